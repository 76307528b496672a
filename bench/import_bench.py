"""Import and rendering benchmark for the certificate portal (no network, one process).

    .venv/bin/python bench/import_bench.py [--count 10000] [--apps 1000]   # --count 500 --apps 50: smoke run

Writes a bundle of ``count`` distinct PEM certificates (``apps`` directories) and times
``import_certs --app bench BUNDLE`` against reading the same files and extracting the same
facts with cryptography alone (target: at most 3x); ``Importer.import_paths`` is timed too.
Then it imports the bundle once per application directory (``import_certs --create-app``, as a
script would, application by application), each run against the same facts of that directory's
files with cryptography, measured right before it (target: at most 6x), and renders the dashboard
and the certificate list as a superuser, at a fixed instant.

The database is a temporary SQLite file unless DATABASE_URL names one: that must be an empty
scratch database; it is migrated, and emptied again at the end.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from unittest import mock

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from portal_env import set_up_portal, timed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ISSUED = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # every certificate's not_before
FIRST_EXPIRY = ISSUED + timedelta(days=30)  # not_after runs from here over SPREAD
SPREAD = timedelta(days=400)
RENDER_NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # pages are rendered "at" this instant
PAGES = {
    "dashboard": "/",
    "certificates": "/certificates/",
    "expiring": "/certificates/?sort=-expiry&state=expiring",
}
TARGET = 3.0
PER_APP_TARGET = 6.0  # a run of import_certs per application directory


def configure(tmp: Path) -> None:
    """Environment for portal.settings, then django.setup(), migrate and collectstatic."""
    set_up_portal(tmp)
    from django.conf import settings
    from django.core.management import call_command

    settings.STATIC_ROOT = tmp / "static"  # templates use whitenoise's hashed names
    call_command("collectstatic", "--noinput", verbosity=0)


def generate_bundle(root: Path, count: int, apps: int) -> list[Path]:
    """``count`` distinct PEM certificates (subject, serial, not_after) in ``apps`` directories.
    Ten RSA-2048 subject keys are reused and a P-256 CA signs, which is fast."""
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(10)]
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name.from_rfc4514_string("CN=Bench Client CA")
    dirs = [root / f"app-{a:04d}" for a in range(apps)]
    for path in dirs:
        path.mkdir(parents=True)
    step = SPREAD / count
    for i in range(count):
        app = i % apps
        subject = x509.Name.from_rfc4514_string(f"CN=bench-app-{app:04d} client {i:05d},O=Bench Corp,C=DE")
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(keys[i % len(keys)].public_key())
            .serial_number(0x100000 + i)
            .not_valid_before(ISSUED)
            .not_valid_after(FIRST_EXPIRY + step * i)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        (dirs[app] / f"cert-{i:05d}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return dirs


def baseline_seconds(paths: list[Path]) -> float:
    """Parsing and fact extraction with cryptography alone: no Django, no database."""
    facts = []
    start = perf_counter()
    for path in paths:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        fingerprint = cert.fingerprint(hashes.SHA256()).hex()
        facts.append(
            (fingerprint, cert.subject.rfc4514_string(), cert.not_valid_before_utc, cert.not_valid_after_utc)
        )
    return perf_counter() - start


def baseline_same_facts_seconds(paths: list[Path]) -> float:
    """Every fact the portal stores, with cryptography alone: no Django, no database."""
    facts = []
    start = perf_counter()
    for path in paths:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        digest = cert.fingerprint(hashes.SHA256())
        extensions = {type(ext.value): ext.value for ext in cert.extensions}
        key = cert.public_key()
        facts.append(
            (
                cert.public_bytes(serialization.Encoding.PEM),
                digest.hex(),
                base64.urlsafe_b64encode(digest).rstrip(b"="),
                cert.subject.rfc4514_string(),
                cert.issuer.rfc4514_string(),
                format(cert.serial_number, "x"),
                cert.not_valid_before_utc,
                cert.not_valid_after_utc,
                type(key).__name__,
                key.key_size,
                [str(n.value) for n in extensions.get(x509.SubjectAlternativeName, [])],
                [oid._name for oid in extensions.get(x509.ExtendedKeyUsage, [])],
                getattr(extensions.get(x509.BasicConstraints), "ca", False),
            )
        )
    return perf_counter() - start


def import_with_command(paths: list[Path], slug: str) -> float:
    """``manage.py import_certs --app SLUG --create-app PATH...``; stderr is not a terminal."""
    from django.core.management import call_command

    out = io.StringIO()
    start = perf_counter()
    with contextlib.redirect_stderr(out):  # no tqdm bar, as under cron or in a pipeline
        call_command("import_certs", *map(str, paths), app=slug, create_app=True, stdout=out, stderr=out)
    return perf_counter() - start


def import_with_importer(paths: list[Path], slug: str) -> float:
    """The same work through ``Importer.import_paths``, without the command around it."""
    from certmgr.inventory.importer import Importer
    from certmgr.models import Application

    start = perf_counter()
    app = Application.objects.create(slug=slug, name=slug)
    list(Importer(app, store_keys=False, actor_label="bench").import_paths(paths, None))
    return perf_counter() - start  # failures show in check_imported


def wipe() -> None:
    from django.contrib.auth import get_user_model

    from certmgr.models import Application, AuditEvent, Certificate

    AuditEvent.objects.all().delete()
    Certificate.objects.all().delete()
    Application.objects.all().delete()
    get_user_model().objects.filter(username="bench-admin").delete()


def check_imported(count: int, apps: int) -> None:
    from certmgr.models import Application, Certificate

    found = (Certificate.objects.count(), Application.objects.count())
    if found != (count, apps):
        sys.exit(f"Expected {count} certificates in {apps} applications, found {found[0]} in {found[1]}.")


def render_pages(runs: int) -> dict[str, float | int | str | None]:
    """Median render time (ms) and SQL query count per page, and a plain SELECT for scale."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from certmgr.models import Certificate

    select = timed(lambda: list(Certificate.objects.order_by("not_after")[:50].values()), runs) * 1000
    out: dict[str, float | int | str | None] = {"select_ms": round(select, 3)}
    admin = get_user_model().objects.create_superuser("bench-admin", "bench@example.com", None)
    # A failing page is reported, not fatal; https as the router forwards it (production settings
    # redirect plain http).
    client = Client(raise_request_exception=False, HTTP_X_FORWARDED_PROTO="https")
    with mock.patch("django.utils.timezone.now", return_value=RENDER_NOW):
        client.force_login(admin)
        for name, url in PAGES.items():
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            if response.status_code != 200:
                exc = response.exc_info[1] if response.exc_info else None
                out[f"{name}_error"] = f"HTTP {response.status_code}" + (f": {exc!r}" if exc else "")
                out[f"{name}_ms"] = out[f"{name}_queries"] = out[f"{name}_vs_select"] = None
                continue
            out[f"{name}_queries"] = len(queries)
            ms = timed(lambda url=url: client.get(url), runs) * 1000
            out[f"{name}_ms"] = round(ms, 2)
            out[f"{name}_vs_select"] = round(ms / select, 1)
    return out


def measure_imports(bundle: Path, dirs: list[Path], rounds: int) -> dict[str, float]:
    """Seconds: the fastest baseline and bundle imports (in alternating order), then one import
    per application directory, which stays in the database for the pages."""
    paths = sorted(path for d in dirs for path in d.iterdir())  # the order import_certs uses
    n = len(paths)
    baselines, direct, command = [baseline_seconds(paths)], [], []
    full = [baseline_same_facts_seconds(paths)]
    runs = [
        (direct, lambda: import_with_importer(paths, "bench")),
        (command, lambda: import_with_command([bundle], "bench")),
    ]
    for round_ in range(rounds):
        baselines.append(baseline_seconds(paths))
        full.append(baseline_same_facts_seconds(paths))
        for times, run in runs if round_ % 2 == 0 else runs[::-1]:
            times.append(run())
            check_imported(n, 1)
            wipe()
    baselines.append(baseline_seconds(paths))
    full.append(baseline_same_facts_seconds(paths))
    # Each directory's baseline right before its import: on a shared machine whose speed drifts by
    # a quarter from one second to the next, the two sides of the ratio then meet the same drift.
    per_app = per_app_baseline = 0.0
    for d in dirs:
        per_app_baseline += baseline_same_facts_seconds(sorted(d.iterdir()))
        per_app += import_with_command([d], d.name)
    check_imported(n, len(dirs))
    return {
        "baseline": min(baselines),
        "same_facts": min(full),
        "command": min(command),
        "importer": min(direct),
        "per_app": per_app,
        "per_app_baseline": per_app_baseline,
    }


# The report goes to a file, as a user's redirect or pipe takes it: a StringIO would keep all of
# its 100,000 lines in this process and count them as the import's memory.
# Peak memory is each process's VmHWM, read from /proc: ru_maxrss would not do, as Linux carries
# the high-water mark of the forked copy of the parent (this benchmark, hundreds of MiB after
# generating the files) across exec into the child's ru_maxrss. The workers' VmHWM is sampled
# every 20 ms while they run (the mark only grows), once they have exec'd.
RSS_PROBE = """
import json, os, sys, tempfile, threading, time
def vm_hwm(pid="self"):
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0
workers = {}
def watch():
    while True:
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/children") as children:
                    pids = children.read().split()
            except OSError:
                pids = []
            for pid in pids:
                try:  # a child still between fork and exec has this process's memory: not a worker yet
                    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                        if b"spawn_main" not in cmdline.read():
                            continue
                except OSError:
                    continue
                workers[pid] = max(workers.get(pid, 0), vm_hwm(pid))
        time.sleep(0.02)
threading.Thread(target=watch, daemon=True).start()
import django
django.setup()
from django.core.management import call_command
out = tempfile.TemporaryFile("w+")
try:
    call_command("import_certs", sys.argv[1], app=sys.argv[2], create_app=True, stdout=out, stderr=out)
except SystemExit as exc:
    out.seek(0)
    sys.exit(f"import_certs failed ({exc.code}): " + out.read()[-500:])
print(json.dumps({"main": vm_hwm(), "workers": max(workers.values(), default=0)}))
"""


def peak_rss(tmp: Path, counts: list[int]) -> dict[str, dict[str, int]]:
    """Peak memory (MiB) of ``manage.py import_certs`` over 10 files, then each of ``counts``:
    a new process each time, as a user runs it, into an empty database."""
    import subprocess

    largest = max(counts)
    per_dir = 1000
    start = perf_counter()
    dirs = generate_bundle(tmp / "rss", largest, max(1, largest // per_dir))
    print(f"generated {largest} certificates for the memory runs: {perf_counter() - start:.0f} s")
    out: dict[str, dict[str, int]] = {}
    for count in [10, *counts]:
        part = tmp / f"rss-{count}"
        part.mkdir()
        for d in dirs[: max(1, count // per_dir)]:
            files = sorted(d.iterdir())[:count]
            (part / d.name).mkdir()
            for f in files:
                (part / d.name / f.name).symlink_to(f)
        run = subprocess.run(
            [sys.executable, "-c", RSS_PROBE, str(part), f"rss-{count}"],
            capture_output=True, text=True, cwd=ROOT, check=False,
        )  # fmt: skip
        if run.returncode:
            sys.exit(run.stderr)
        out[str(count)] = json.loads(run.stdout.strip().splitlines()[-1])
        print(
            f"peak RSS importing {count:>7} files: {out[str(count)]['main']:4} MiB, workers {out[str(count)]['workers']:4} MiB"
        )
        wipe()
    return out


def report(n: int, apps: int, db: str, secs: dict[str, float], pages: dict) -> dict[str, object]:
    base, cmd, imp, per_app = secs["baseline"], secs["command"], secs["importer"], secs["per_app"]
    same = secs["same_facts"]
    ratio = cmd / same
    per_app_ratio = per_app / secs["per_app_baseline"]
    print(f"baseline, cryptography, 4 facts:    {n / base:8.0f} certificates/s  ({base:.2f} s)")
    print(f"baseline, cryptography, same facts: {n / same:8.0f} certificates/s  ({same:.2f} s)")
    print(f"import_certs, one bundle:           {n / cmd:8.0f} certificates/s  ({cmd:.2f} s)")
    print(f"Importer.import_paths, one bundle:  {n / imp:8.0f} certificates/s  ({imp:.2f} s)")
    print(f"import_certs, once per application: {n / per_app:8.0f} certificates/s  ({per_app:.2f} s)")
    print(
        f"ratio import_certs / same-facts baseline: {ratio:.1f}x (Importer: {imp / same:.1f}x, "
        f"per application: {per_app_ratio:.1f}x, target ≤ {PER_APP_TARGET:.0f}×: "
        f"{'met' if per_app_ratio <= PER_APP_TARGET else 'NOT met'}); target ≤ {TARGET:.0f}×: "
        f"{'met' if ratio <= TARGET else 'NOT met'}"
    )
    print(
        f"  per application: {per_app / apps * 1000:.2f} ms per run of {n // apps} files, the same facts with "
        f"cryptography {secs['per_app_baseline'] / apps * 1000:.2f} ms (measured right before each run; "
        f"{same / apps * 1000:.2f} ms as a share of the whole bundle's fastest baseline: {per_app / same:.1f}x)"
    )
    print(f"ratio import_certs / 4-fact baseline (fingerprint, subject, dates only): {cmd / base:.1f}x")
    print(f"rendering {n} certificates in {apps} applications as a superuser (median of 5):")
    for name, url in PAGES.items():
        if pages.get(f"{name}_error"):
            print(f"  {url:44} FAILED: {pages[f'{name}_error']}")
        else:
            print(
                f"  {url:44} {pages[f'{name}_ms']:7.1f} ms  {pages[f'{name}_queries']:2} queries  "
                f"{pages[f'{name}_vs_select']:5.1f}x the plain SELECT"
            )
    print(f"  plain SELECT of the first 50 rows (.values()): {pages['select_ms']:.2f} ms")
    summary = {
        "database": db, "count": n, "apps": apps,
        "import_cps": round(n / cmd), "importer_cps": round(n / imp), "per_app_cps": round(n / per_app),
        "baseline_cps": round(n / base), "same_facts_cps": round(n / same), "ratio": round(ratio, 2),
        "ratio_4_facts": round(cmd / base, 2), "importer_ratio": round(imp / same, 2),
        "per_app_ratio": round(per_app_ratio, 2), "per_app_run_ms": round(per_app / apps * 1000, 3),
        "per_app_baseline_ms": round(secs["per_app_baseline"] / apps * 1000, 3),
        "per_app_vs_bundle_baseline": round(per_app / same, 2),
        "target_met": ratio <= TARGET, "per_app_target_met": per_app_ratio <= PER_APP_TARGET, **pages,
    }  # fmt: skip
    print(json.dumps(summary))
    return summary


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="certificates (default 10000)")
    parser.add_argument("--apps", type=int, default=1_000, help="applications (default 1000)")
    parser.add_argument("--rounds", type=int, default=2, help="imports per method; the fastest counts")
    parser.add_argument(
        "--rss-files",
        default="",
        metavar="N,N",
        help="also the peak memory of import_certs over this many files each, e.g. 10000,100000",
    )
    args = parser.parse_args(argv)
    if not 0 < args.apps <= args.count:
        parser.error("need 0 < --apps <= --count")
    with tempfile.TemporaryDirectory(prefix="certmgr-bench-") as tmp_name:
        tmp = Path(tmp_name)
        configure(tmp)
        from django.db import connection, connections

        print(f"database: {connection.vendor} ({connection.settings_dict['NAME']})")
        start = perf_counter()
        dirs = generate_bundle(tmp / "bundle", args.count, args.apps)
        print(
            f"generated {args.count} certificates in {args.apps} directories: {perf_counter() - start:.1f} s"
        )
        secs = measure_imports(tmp / "bundle", dirs, args.rounds)
        pages = render_pages(runs=5)
        summary = report(args.count, args.apps, connection.vendor, secs, pages)
        if args.rss_files:
            wipe()
            rss = peak_rss(tmp, [int(n) for n in args.rss_files.split(",")])
            # Growth over the counts asked for (all with the parse workers); the 10-file run, parsed
            # in the process alone, is printed for scale.
            mains = [v["main"] for count, v in rss.items() if count != "10"]
            growth = round(mains[-1] / mains[0], 2)
            print(f"peak memory of the largest import / the smallest asked for: {growth}x (flat: about 1)")
            summary |= {"rss_mib": rss, "rss_growth": growth}
            print(json.dumps(summary))
        if os.environ.get("DATABASE_URL"):
            wipe()
        connections.close_all()
    return summary


if __name__ == "__main__":
    main()
