"""Health-check benchmark: the portal's token-flow check against the local IAS stand-in (127.0.0.1 only).

    .venv/bin/python bench/healthcheck_bench.py [--apps 200] [--workers 8] [--rounds 3]   # --apps 20 --rounds 1: smoke run
    .venv/bin/python bench/healthcheck_bench.py --profile   # and cProfile one sequential round of each
    .venv/bin/python bench/healthcheck_bench.py --latency-ms 50   # a remote IAS: every answer 50 ms late

Starts the IAS stand-in (tenant and protected backend) in a process of its own on 127.0.0.1 (so its
TLS and signing do not share this process's GIL, as a real IAS shares nothing with the portal), creates
``apps`` applications with a distinct certificate and stored key each, registers every certificate
with the stand-in under the application's client id, and times, over all applications:

* the baseline a plain requests user would write: ``requests.post`` to the token endpoint with the
  client certificate (mTLS) and ``jwt.decode`` (PyJWT) of the token with the JWKS key fetched once;
* ``core.tokenflow.run_token_flow`` alone (no Django: the decrypted key passed in);
* the scheduled check, ``schedule.run_due``, sequentially (1 worker) and with the thread pool,
  without a backend (discovery, token, validation: the figure compared with the baseline) and
  with the backend's /hello (for information);
* if Debian's ``prometheus-blackbox-exporter`` is installed: its two-step probe of every application
  (discovery GET, then the mTLS token POST; bench/blackbox_probe.py), the exporter on 127.0.0.1 with
  a module per application (target: our stored check at most 1.0x its probe time).

``--latency-ms N`` makes the stand-in answer every request N ms late (tenant and backend), as an IAS
20-200 ms away does; the stand-in serves each connection in its own thread, so the pool's waits
overlap as they would against IAS, and ``pool_speedup`` shows what the pool is for.

Every figure is the median of ``rounds`` rounds after one warm-up round; the ratios are against the
baseline measured in the same process and the same rounds (target: at most 1.5x). Any failed check
is printed with its diagnosis and ends the benchmark with exit status 1.

The database is a temporary SQLite file unless DATABASE_URL names one: that must be an empty
scratch database; it is migrated, and emptied again at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

from blackbox_probe import Blackbox, blackbox_binary
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from portal_env import set_up_portal
from standin_process import StandInProcess

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The stand-in judges certificate expiry, and the checker token expiry, by the real clock: the
# fixed validity window must contain the day the benchmark runs.
NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2030, 1, 1, tzinfo=UTC)
TIMEOUT = (5, 10)  # connect, read: the portal's defaults, for the baseline too
TARGET = 1.5
BLACKBOX_TARGET = 1.0  # our stored check against blackbox_exporter's probe alone
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Client:
    """One application's IAS client: the values each method needs, prepared before timing."""

    slug: str
    client_id: str
    cert_pem: bytes
    cert_file: Path  # for requests, which wants files


def configure(tmp: Path, ca_file: Path, workers: int) -> None:
    """Portal settings with the stand-in's host allowed and its CA trusted; Django set up, migrated."""
    loopback = "127.0.0.1,::1,localhost"
    set_up_portal(
        tmp,
        CERTMGR_TENANT_HOSTS=LOOPBACK,
        CERTMGR_OUTBOUND_ALLOW=LOOPBACK,  # the stand-in's backend (not a tenant call)
        CERTMGR_CA_BUNDLE=str(ca_file),
        CERTMGR_HEALTHCHECK_WORKERS=str(workers),
        # requests honours proxy variables; nothing here may leave this machine.
        NO_PROXY=loopback,
        no_proxy=loopback,
    )


def generate_certificates(count: int) -> tuple[bytes, bytes, list[bytes]]:
    """The PEM and PKCS#8 DER of one RSA-2048 key, and ``count`` distinct self-signed client
    certificates for it (CN and serial differ)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certs = []
    for i in range(count):
        name = x509.Name.from_rfc4514_string(f"CN=bench-hc-{i:04d} client,O=Bench Corp,C=DE")
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(0x200000 + i)
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256())
        )
        certs.append(cert.public_bytes(serialization.Encoding.PEM))
    pkcs8 = serialization.PrivateFormat.PKCS8
    key_pem = key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())
    key_der = key.private_bytes(serialization.Encoding.DER, pkcs8, serialization.NoEncryption())
    return key_pem, key_der, certs


def create_applications(standin, tmp: Path, key_pem: bytes, certs: list[bytes]) -> list[Client]:
    """An application per certificate, its key stored; the certificate registered with the stand-in
    and written to a file (with the key in one file next to it) for the baseline."""
    from certmgr.inventory.importer import Importer, ImportResult
    from certmgr.models import Application

    (tmp / "client-key.pem").write_bytes(key_pem)
    clients = []
    for i, cert_pem in enumerate(certs):
        slug, client_id = f"bench-hc-{i:04d}", f"bench-client-{i:04d}"
        app = Application.objects.create(
            slug=slug, name=slug, tenant_url=standin.url, client_id=client_id, domains=[], backend_url=""
        )
        importer = Importer(app, store_keys=True, actor_label="bench")
        parsed = importer.parse(f"{slug}.pem", key_pem + cert_pem, None)
        results = [parsed] if isinstance(parsed, ImportResult) else importer.save([(f"{slug}.pem", parsed)])
        if not (results[0].ok and results[0].key_stored):
            sys.exit(f"Storing the certificate of {slug} failed: {results[0].error or 'key not stored'}")
        standin.register(client_id, cert_pem)
        cert_file = tmp / f"{slug}.pem"
        cert_file.write_bytes(cert_pem)
        clients.append(Client(slug, client_id, cert_pem, cert_file))
    return clients


# --- what is timed: each function checks every application once, sequentially or in the pool ---


def baseline(clients: list[Client], token_endpoint: str, key_file: Path, ca_file: Path, jwk_key) -> None:
    """What a plain requests + PyJWT user writes: mTLS token call, then signature, exp and aud."""
    import jwt
    import requests

    for client in clients:
        response = requests.post(
            token_endpoint,
            data={"grant_type": "client_credentials", "client_id": client.client_id},
            cert=(str(client.cert_file), str(key_file)),
            verify=str(ca_file),
            timeout=TIMEOUT,
        )
        if response.status_code != 200:
            fail(
                f"baseline token request for {client.client_id}: HTTP {response.status_code} {response.text}"
            )
        token = response.json()["access_token"]
        jwt.decode(token, jwk_key, algorithms=["RS256"], audience=client.client_id)


def token_flow(clients: list[Client], tenant_url: str, key_der: bytes) -> None:
    """``run_token_flow`` alone: no database, no audit, no stored run; the key passed in."""
    from certmgr.core.tokenflow import TokenFlowOptions, TokenFlowRequest, run_token_flow
    from certmgr.healthcheck.runner import IAS_DOMAINS
    from certmgr.lib.policy import http_policy

    options = TokenFlowOptions(policy=http_policy())  # the policy the portal's check uses
    for client in clients:
        request = TokenFlowRequest(
            tenant_url=tenant_url,
            client_id=client.client_id,
            certificate_pem=client.cert_pem,
            key_der=key_der,
            trusted_domains=(*IAS_DOMAINS, LOOPBACK),
        )
        result = run_token_flow(request, options)
        if not result.ok:
            step = result.failed_step
            fail(f"run_token_flow for {client.client_id}: {step.name}: {step.diagnosis}")


def make_due(backend_url: str) -> None:
    from certmgr.models import Application

    Application.objects.update(next_check_at=None, backend_url=backend_url)


def portal_checks(count: int, workers: int, with_backend: bool) -> None:
    """``run_due`` over every application; all must be checked, and all must pass."""
    from certmgr.healthcheck.schedule import run_due

    runs = run_due(workers=workers)
    if len(runs) != count:
        fail(f"run_due(workers={workers}) checked {len(runs)} of {count} applications")
    for run in runs:
        if not run.ok:
            fail(f"run_due(workers={workers}): {run.application.slug}: {run.failed_step}: {run.diagnosis}")
        backend = run.steps[-1]
        if with_backend and backend.get("ok") is not True:
            fail(f"run_due(workers={workers}): {run.application.slug}: the backend was not called")


def fail(message: str) -> None:
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    run: Callable[[], None]
    prepare: Callable[[], None] = lambda: None  # untimed, before each round


def discover(tenant_url: str, ca_file: Path) -> tuple[str, str]:
    """The stand-in's token endpoint and JWKS URI, from its discovery document."""
    import requests

    discovery = requests.get(
        f"{tenant_url}/.well-known/openid-configuration", verify=str(ca_file), timeout=TIMEOUT
    )
    discovery.raise_for_status()
    return discovery.json()["token_endpoint"], discovery.json()["jwks_uri"]


def methods(standin, clients: list[Client], tmp: Path, key_der: bytes, workers: int) -> list[Method]:
    import jwt
    import requests

    ca_file = tmp / "standin-ca.pem"
    token_endpoint, jwks_uri = discover(standin.url, ca_file)
    jwks = requests.get(jwks_uri, verify=str(ca_file), timeout=TIMEOUT).json()
    [jwk_key] = [jwt.PyJWK(entry).key for entry in jwks["keys"]]
    n, hello = len(clients), standin.backend_url + "/hello"
    return [
        Method("baseline", "baseline: requests mTLS token + PyJWT decode",
               lambda: baseline(clients, token_endpoint, tmp / "client-key.pem", ca_file, jwk_key)),
        Method("token_flow", "core run_token_flow alone (no Django)",
               lambda: token_flow(clients, standin.url, key_der)),
        Method("check_seq", "portal check, run_due, 1 worker",
               lambda: portal_checks(n, 1, False), lambda: make_due("")),
        Method("check_pool", f"portal check, run_due, {workers} workers",
               lambda: portal_checks(n, workers, False), lambda: make_due("")),
        Method("backend_seq", "check + backend /hello, 1 worker",
               lambda: portal_checks(n, 1, True), lambda: make_due(hello)),
        Method("backend_pool", f"check + backend /hello, {workers} workers",
               lambda: portal_checks(n, workers, True), lambda: make_due(hello)),
    ]  # fmt: skip


@dataclass
class BlackboxRun:
    """blackbox_exporter's two-step probe of every application as a Method, and the exporter's own
    probe_duration_seconds of each pass (the /probe round trips to the exporter left out)."""

    box: Blackbox
    probe_seconds: list[float]

    def method(self) -> Method:
        return Method("blackbox", "blackbox_exporter: discovery + mTLS token", self._run)

    def _run(self) -> None:
        try:
            self.box.probe_all()
        except RuntimeError as exc:
            fail(str(exc))
        self.probe_seconds.append(self.box.probe_seconds)


def start_blackbox(stack: ExitStack, standin, clients: list[Client], tmp: Path) -> BlackboxRun | None:
    """blackbox_exporter on 127.0.0.1 with a module per application, if it is installed."""
    if blackbox_binary() is None:
        return None
    ca_file = tmp / "standin-ca.pem"
    token_endpoint, _ = discover(standin.url, ca_file)
    probed = [(client.client_id, client.cert_file) for client in clients]
    box = Blackbox(tmp / "blackbox", standin.url, token_endpoint, ca_file, tmp / "client-key.pem", probed)
    return BlackboxRun(stack.enter_context(box), [])


def measure(standin, all_methods: list[Method], count: int, rounds: int) -> dict[str, float]:
    """Median seconds per method over ``rounds`` rounds, after a warm-up round; the order of the
    methods alternates between rounds, so a drift of the machine does not favour one of them.
    Every run must have sent exactly ``count`` token requests, all answered 200."""
    times: dict[str, list[float]] = {method.name: [] for method in all_methods}
    for round_ in range(rounds + 1):
        for method in all_methods if round_ % 2 == 0 else all_methods[::-1]:
            method.prepare()
            seen, answered = standin.token_counts()
            start = perf_counter()
            method.run()
            elapsed = perf_counter() - start
            seen_after, answered_after = standin.token_counts()
            sent, refused = seen_after - seen, (seen_after - answered_after) - (seen - answered)
            if sent != count or refused:
                fail(
                    f"{method.name}: the stand-in saw {sent} token requests, {refused} refused; expected {count}"
                )
            if round_:  # round 0 warms up: connection pools, JWKS cache, imports, the database
                times[method.name].append(elapsed)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def profile(all_methods: list[Method], names: tuple[str, ...], top: int) -> None:
    """cProfile one round of each named method (this thread only: the stand-in's process is not
    in it), the functions with the most own time first."""
    for method in all_methods:
        if method.name not in names:
            continue
        method.prepare()
        profiler = cProfile.Profile()
        profiler.runcall(method.run)
        print(f"\n--- cProfile: {method.label} (one round, by own time) ---")
        stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats("tottime")
        stats.print_stats(top)
        print(f"--- cProfile: {method.label} (by cumulative time) ---")
        stats.sort_stats("cumulative").print_stats(top)


def verdict(ratio: float) -> str:
    return f"(target ≤ {TARGET}×: {'met' if ratio <= TARGET else 'NOT met'})"


def report(
    secs: dict[str, float],
    all_methods: list[Method],
    count: int,
    workers: int,
    info: dict,
    blackbox_probe_seconds: float | None,
) -> dict:
    base = secs["baseline"]
    print(f"{'':46} {'per check':>10} {'checks/s':>9} {'vs baseline':>12}")
    for method in all_methods:
        seconds = secs[method.name]
        print(
            f"{method.label:46} {seconds / count * 1000:7.2f} ms {count / seconds:9.0f} {seconds / base:11.2f}×"
        )
    print("  (pool rows: wall-clock time of the round divided by the applications)")
    speedup = secs["check_seq"] / secs["check_pool"]
    speedup_backend = secs["backend_seq"] / secs["backend_pool"]
    ratio, flow_ratio = secs["check_seq"] / base, secs["token_flow"] / base
    shell_ms = (secs["check_seq"] - secs["token_flow"]) / count * 1000
    print(
        f"pool speed-up over sequential, {workers} workers on {info['cores']} cores: "
        f"{speedup:.2f}× without backend, {speedup_backend:.2f}× with backend /hello"
    )
    print(f"per-check cost: {ratio:.2f}× the bare requests + PyJWT baseline {verdict(ratio)}")
    print(f"  core run_token_flow alone: {flow_ratio:.2f}× the baseline {verdict(flow_ratio)}")
    print(
        f"  the portal around the flow (claim, key read and audit row, stored run): {shell_ms:.2f} ms per check"
    )
    print(
        f"  full check with backend /hello: {secs['backend_seq'] / count * 1000:.2f} ms per check, sequential "
        f"({secs['backend_seq'] / base:.2f}× the baseline, which calls no backend)"
    )
    blackbox, blackbox_note = blackbox_comparison(secs, count, blackbox_probe_seconds)
    print(f"blackbox_exporter: {blackbox_note}")
    summary = {
        **info, "apps": count, "workers": workers, "blackbox": blackbox, "blackbox_note": blackbox_note,
        **{f"{name}_ms": round(seconds / count * 1000, 3) for name, seconds in secs.items()},
        **{f"{name}_cps": round(count / seconds, 1) for name, seconds in secs.items()},
        "pool_speedup": round(speedup, 2), "pool_speedup_backend": round(speedup_backend, 2),
        "ratio": round(ratio, 2), "token_flow_ratio": round(flow_ratio, 2),
        "backend_ratio": round(secs["backend_seq"] / base, 2), "target_met": ratio <= TARGET,
    }  # fmt: skip
    print(json.dumps(summary))
    return summary


def blackbox_comparison(
    secs: dict[str, float], count: int, probe_seconds: float | None
) -> tuple[dict | None, str]:
    """Our sequential check against blackbox_exporter's two-step probe (discovery GET, then the mTLS
    token POST) of the same applications on the same stand-in, in the same rounds. The ratio is
    against the exporter's own probe time (the stricter figure: our check pays for its database
    writes, while the time to ask the exporter and read its metrics is left out); the wall-clock
    of the /probe calls is given too."""
    if probe_seconds is None:
        return (
            None,
            "not compared: prometheus-blackbox-exporter is not installed (Debian package of that name)",
        )
    check = secs["check_seq"]
    figures = {
        "probe_ms": round(probe_seconds / count * 1000, 3),
        "wall_ms": round(secs["blackbox"] / count * 1000, 3),
        "ratio": round(check / probe_seconds, 2),
        "wall_ratio": round(check / secs["blackbox"], 2),
    }
    figures["target_met"] = figures["ratio"] <= BLACKBOX_TARGET
    note = (
        f"its probe {figures['probe_ms']:.2f} ms per application ({figures['wall_ms']:.2f} ms with the /probe "
        f"calls), our stored check {check / count * 1000:.2f} ms: {figures['ratio']:.2f}× its probe time "
        f"({figures['wall_ratio']:.2f}× the wall-clock) (target ≤ {BLACKBOX_TARGET}×: "
        f"{'met' if figures['target_met'] else 'NOT met'})"
    )
    return figures, note


def wipe() -> None:
    from certmgr.models import Application, AuditEvent, Certificate, HealthCheckRun

    Application.objects.update(last_check=None)
    HealthCheckRun.objects.all().delete()
    AuditEvent.objects.all().delete()
    Certificate.objects.all().delete()
    Application.objects.all().delete()


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=200, help="applications (default 200)")
    parser.add_argument("--workers", type=int, default=8, help="threads of the pool (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after a warm-up; medians count")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="the stand-in delays every answer so (default 0)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then cProfile one round of the baseline, the flow and the sequential check",
    )
    parser.add_argument("--top", type=int, default=30, help="functions listed per profile (default 30)")
    args = parser.parse_args(argv)
    if args.apps < 1 or args.workers < 1 or args.rounds < 1:
        parser.error("need --apps, --workers and --rounds of at least 1")
    if args.latency_ms < 0:
        parser.error("--latency-ms cannot be negative")
    with (
        tempfile.TemporaryDirectory(prefix="certmgr-hc-bench-") as tmp_name,
        StandInProcess(host=LOOPBACK, latency=args.latency_ms / 1000) as standin,
        ExitStack() as stack,
    ):
        tmp = Path(tmp_name)
        (tmp / "standin-ca.pem").write_bytes(standin.ca_pem)
        configure(tmp, tmp / "standin-ca.pem", args.workers)
        from django.conf import settings
        from django.db import connection, connections

        try:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
            info = {
                "database": connection.vendor,
                "cores": cores,
                "python": platform.python_version(),
                "latency_ms": args.latency_ms,
                "debug": settings.DEBUG,
            }
            print(
                f"machine: {cores} cores usable ({os.cpu_count()} present), Python {info['python']}, "
                f"database: {connection.vendor} ({connection.settings_dict['NAME']})"
            )
            print(
                f"stand-in in its own process: tenant {standin.url}, backend {standin.backend_url}, "
                f"every answer {args.latency_ms:g} ms late; DEBUG={settings.DEBUG}"
            )
            start = perf_counter()
            key_pem, key_der, certs = generate_certificates(args.apps)
            clients = create_applications(standin, tmp, key_pem, certs)
            print(
                f"generated, stored and registered {args.apps} certificates: {perf_counter() - start:.1f} s"
            )
            all_methods = methods(standin, clients, tmp, key_der, args.workers)
            blackbox = start_blackbox(stack, standin, clients, tmp)
            if blackbox is not None:
                all_methods.append(blackbox.method())
            secs = measure(standin, all_methods, args.apps, args.rounds)
            # The first pass warmed up, as in measure().
            probe = statistics.median(blackbox.probe_seconds[1:]) if blackbox else None
            expected = args.apps * len(all_methods) * (args.rounds + 1)
            seen, answered = standin.token_counts()
            print(
                f"stand-in token requests: {seen}, {answered} answered 200 (expected "
                f"{expected}: {args.apps} applications × {len(all_methods)} methods × {args.rounds + 1} rounds)"
            )
            print(f"median of {args.rounds} rounds over {args.apps} applications:")
            summary = report(secs, all_methods, args.apps, args.workers, info, probe)
            if args.profile:
                profile(all_methods, ("baseline", "token_flow", "check_seq"), args.top)
        finally:
            if os.environ.get("DATABASE_URL"):
                wipe()
            connections.close_all()
    return summary


if __name__ == "__main__":
    main()
