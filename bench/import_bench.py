"""Import and rendering benchmark for the certificate portal.

    .venv/bin/python bench/import_bench.py [--count 10000] [--apps 1000] [--rounds 2]

Generates ``count`` distinct certificates (``count / apps`` per application directory of a
bundle), imports them through ``import_certs`` (one invocation per application) and, for
comparison, through ``Importer.import_paths`` directly; compares that with parsing the same
files with cryptography alone (target: at most 3x); then renders the dashboard and the
certificate list as a superuser. Everything runs in this process, with no network.

The database is a temporary SQLite file unless DATABASE_URL is set; then it must name an
empty scratch database, which is migrated and left holding the benchmark's data.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from unittest import mock

from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ISSUED = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # every certificate's not_before
FIRST_EXPIRY = ISSUED + timedelta(days=30)  # not_after runs from here over SPREAD
SPREAD = timedelta(days=400)
RENDER_NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # pages are rendered "at" this instant
PAGES = {"dashboard": "/", "certificates": "/certificates/", "expiring": "/certificates/?sort=-expiry&state=expiring"}
TARGET = 3.0


def configure(tmp: Path) -> None:
    """Environment for portal.settings, then django.setup(), migrate and collectstatic."""
    if not os.environ.get("DATABASE_URL"):
        os.environ.pop("VCAP_SERVICES", None)
        os.environ["SQLITE_PATH"] = str(tmp / "bench.sqlite3")
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["DJANGO_SECRET_KEY"] = "bench-" + Fernet.generate_key().decode()
    os.environ["CERTMGR_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.STATIC_ROOT = tmp / "static"  # templates use whitenoise's hashed names
    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)
    from certmgr.models import Application

    if Application.objects.exists():
        sys.exit("The database already holds applications: give the benchmark an empty scratch database.")


def generate_bundle(root: Path, count: int, apps: int) -> list[Path]:
    """Write ``count`` PEM certificates into ``apps`` directories; return the directories.

    Ten RSA-2048 subject keys are reused; a P-256 CA signs (fast), so every certificate is
    distinct by subject, serial and not_after, all at fixed instants.
    """
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(10)]
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench Client CA")])
    dirs = [root / f"app-{a:04d}" for a in range(apps)]
    for path in dirs:
        path.mkdir(parents=True)
    step = SPREAD / count
    for i in range(count):
        app = i % apps
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bench Corp"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"bench-app-{app:04d} client {i:05d}"),
        ])
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


def bundle_files(dirs: list[Path]) -> list[Path]:
    return [path for d in dirs for path in sorted(d.iterdir())]


def baseline_seconds(paths: list[Path]) -> float:
    """Parsing and fact extraction with cryptography alone: no Django, no database."""
    start = perf_counter()
    for path in paths:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        facts = (
            cert.fingerprint(hashes.SHA256()).hex(),
            cert.subject.rfc4514_string(),
            cert.not_valid_before_utc,
            cert.not_valid_after_utc,
        )
        assert facts[0]
    return perf_counter() - start


def import_with_command(dirs: list[Path]) -> float:
    """``manage.py import_certs --app SLUG --create-app DIR``, once per application."""
    from django.core.management import call_command

    out = io.StringIO()
    start = perf_counter()
    for d in dirs:
        call_command("import_certs", str(d), app=d.name, create_app=True, stdout=out, stderr=out)
    return perf_counter() - start


def import_with_importer(dirs: list[Path]) -> float:
    """The same work through ``Importer.import_paths``, without the command around it."""
    from certmgr.importer import Importer
    from certmgr.models import Application

    start = perf_counter()
    for d in dirs:
        app = Application.objects.create(slug=d.name, name=d.name)
        results = Importer(app, store_keys=False, actor_label="bench").import_paths(sorted(d.iterdir()), None)
        failed = [r for r in results if not r.ok]
        if failed:
            sys.exit(f"Import failed: {failed[0].label}: {failed[0].error}")
    return perf_counter() - start


def wipe() -> None:
    from certmgr.models import Application, AuditEvent, Certificate

    AuditEvent.objects.all().delete()
    Certificate.objects.all().delete()
    Application.objects.all().delete()


def check_imported(count: int, apps: int) -> None:
    from certmgr.models import Application, Certificate

    found = (Certificate.objects.count(), Application.objects.count())
    if found != (count, apps):
        sys.exit(f"Expected {count} certificates in {apps} applications, found {found[0]} in {found[1]}.")


def timed(action: Callable[[], object], runs: int) -> float:
    """Median seconds of ``runs`` calls, after one warm-up call."""
    action()
    times = []
    for _ in range(runs):
        start = perf_counter()
        action()
        times.append(perf_counter() - start)
    return statistics.median(times)


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
    client = Client(raise_request_exception=False)  # a failing page is reported, not fatal
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


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="certificates (default 10000)")
    parser.add_argument("--apps", type=int, default=1_000, help="applications (default 1000)")
    parser.add_argument("--rounds", type=int, default=2, help="imports per method; the fastest counts")
    parser.add_argument("--runs", type=int, default=5, help="renders per page; the median counts")
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
        paths = bundle_files(dirs)
        print(f"generated {len(paths)} certificates in {args.apps} directories in {perf_counter() - start:.1f} s")

        baselines = [baseline_seconds(paths) for _ in range(2)]
        direct, command = [], []
        for round_ in range(args.rounds):
            direct.append(import_with_importer(dirs))
            check_imported(args.count, args.apps)
            wipe()
            command.append(import_with_command(dirs))
            check_imported(args.count, args.apps)
            if round_ < args.rounds - 1:
                wipe()
        baselines.append(baseline_seconds(paths))
        base, cmd, imp = min(baselines), min(command), min(direct)
        n = args.count
        ratio = cmd / base
        print(f"baseline (cryptography only):  {n / base:10.0f} certificates/s  ({base:.2f} s)")
        print(f"import_certs (call_command):   {n / cmd:10.0f} certificates/s  ({cmd:.2f} s)")
        print(f"Importer.import_paths:         {n / imp:10.0f} certificates/s  ({imp:.2f} s)")
        print(f"ratio import_certs/baseline: {ratio:.1f}x (Importer: {imp / base:.1f}x); "
              f"target ≤ {TARGET:.0f}×: {'met' if ratio <= TARGET else 'NOT met'}")

        pages = render_pages(args.runs)
        print(f"rendering {n} certificates in {args.apps} applications (median of {args.runs}):")
        for name, url in PAGES.items():
            if pages.get(f"{name}_error"):
                print(f"  {url:45} FAILED: {pages[f'{name}_error']}")
                continue
            print(f"  {url:45} {pages[f'{name}_ms']:8.1f} ms  {pages[f'{name}_queries']:3} queries  "
                  f"{pages[f'{name}_vs_select']:6.1f}x the plain SELECT")
        print(f"  plain SELECT of the first 50 rows: {pages['select_ms']:.2f} ms")
        summary = {
            "database": connection.vendor, "count": n, "apps": args.apps,
            "import_cps": round(n / cmd), "importer_cps": round(n / imp), "baseline_cps": round(n / base),
            "ratio": round(ratio, 2), "importer_ratio": round(imp / base, 2), "target_met": ratio <= TARGET,
            **pages,
        }
        print(json.dumps(summary))
        connections.close_all()
    return summary


if __name__ == "__main__":
    main()
