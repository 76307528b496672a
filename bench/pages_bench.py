"""The list pages at fleet scale: render time and query count, sorted and filtered.

    .venv/bin/python bench/pages_bench.py [--apps 10000 --certs 100000 --events 100000]   # --apps 500 --certs 5000: smoke
    DATABASE_URL=postgres://…/empty_scratch_db .venv/bin/python bench/pages_bench.py --explain

Production settings (DEBUG off, https required: the client says https through the proxy header
as Cloud Foundry's router does), as an admin. The portal is filled twice: first with a tenth of
the data, then with all of it; every page is timed and its SQL queries counted at both sizes (the
counts must be equal: constant in N). The baseline, in the same run, is a plain indexed SELECT of
the first 50 certificates by expiry; each page is reported as a ratio to it. --explain prints
PostgreSQL's plan of each page's row query. The last line is one JSON object: every page's ms
and queries, the database, and all_under_150 (each page under the 150 ms target).

The database is a temporary SQLite file unless DATABASE_URL names one: that must be an empty
scratch database; it is migrated, and emptied again at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from unittest import mock

from portal_env import set_up_portal, timed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # pages are rendered "at" this instant
# Each filter matches rows at a tenth of the data too (applications 0…999), so both sizes render rows.
PAGES = {
    "dashboard": "/",
    "dashboard, by name, searched": "/?sort=name&q=bench-app-004",
    "dashboard, failing checks, by health": "/?health=failing&sort=-health",
    "certificates": "/certificates/",
    "certificates, by application": "/certificates/?sort=application",
    "certificates, expiring, active, by subject": "/certificates/?state=expiring&lifecycle=active&sort=-subject",
    "certificates, one application picked": "/certificates/?application=bench-app-00424&sort=-expiry",
    "audit log": "/audit/",
    "audit log, one action, by who": "/audit/?action=key_read&sort=actor",
    "audit log, application typed": "/audit/?application=bench-app-0042&sort=-at",
    "search": "/search/?q=bench-app-0042",
}
TARGET_MS = 150  # issue 18: every page under this with the full data, on SQLite and PostgreSQL
LIFECYCLES = ["active", "active", "staged", "retired", "retired"]
ACTIONS = ["certificate_added", "key_stored", "key_read", "parameters_generated", "health_check_run"]


def fill(first_app: int, apps: int, certs: int, events: int) -> None:
    """Applications first_app..apps-1 with certificates and audit events spread over them (bulk inserts)."""
    from certmgr.lib import bulk
    from certmgr.models import Application, AuditEvent, Certificate, HealthCheckRun

    new = range(first_app, apps)
    bulk.insert(Application, [application_row(i) for i in new])
    ids = dict(
        Application.objects.filter(slug__in=[f"bench-app-{i:05d}" for i in new]).values_list("slug", "id")
    )
    per_app = certs // apps
    rows = [certificate_row(i, j, ids[f"bench-app-{i:05d}"]) for i in new for j in range(per_app)]
    for start in range(0, len(rows), 20_000):
        bulk.insert(Certificate, rows[start : start + 20_000])
    failing = [ids[f"bench-app-{i:05d}"] for i in new if i % 50 == 7]
    bulk.insert(HealthCheckRun, [failed_run(app_id) for app_id in failing])
    for run in HealthCheckRun.objects.filter(application_id__in=failing):
        Application.objects.filter(pk=run.application_id).update(
            last_check=run, checks_paused=run.pk % 2 == 0
        )
    per_app_events = events // apps
    audit = [event_row(i, k, ids[f"bench-app-{i:05d}"]) for i in new for k in range(per_app_events)]
    for start in range(0, len(audit), 20_000):
        bulk.insert(AuditEvent, audit[start : start + 20_000])


def application_row(i: int) -> dict:
    return {
        "name": f"Bench application {i:05d}", "slug": f"bench-app-{i:05d}", "client_id": f"client-{i:05d}",
        "tenant_url": f"https://tenant{i % 40}.accounts.ondemand.com", "domains": [], "notice_thresholds": [],
        "check_interval_minutes": 60, "created_at": NOW,
    }  # fmt: skip


def certificate_row(i: int, j: int, app_id: int) -> dict:
    digest = hashlib.sha256(f"bench certificate {i} {j}".encode()).digest()
    not_after = NOW + timedelta(days=(i * 7 + j * 113) % 500 - 60, hours=j)
    return {
        "application_id": app_id, "pem": "-----BEGIN CERTIFICATE-----\nYmVuY2g=\n-----END CERTIFICATE-----\n",
        "subject": f"CN=bench-app-{i:05d} client {j},O=Bench Corp,C=DE", "issuer": "CN=Bench Client CA",
        "serial": format(i * 100 + j, "x"), "not_before": not_after - timedelta(days=365), "not_after": not_after,
        "fingerprint": digest.hex(), "x5t_s256": digest.hex()[:43], "key_algorithm": "RSA", "key_size": 2048,
        "sans": [], "extended_key_usage": ["clientAuth"], "source_format": "pem",
        "tenant": f"tenant{i % 40}.accounts.ondemand.com", "lifecycle": LIFECYCLES[j % 5], "uploaded_at": NOW,
    }  # fmt: skip


def failed_run(app_id: int) -> dict:
    return {"application_id": app_id, "trigger": "scheduled", "started_at": NOW - timedelta(minutes=5),
            "ok": False, "failed_step": "token", "code": "invalid_client", "steps": [], "claims": {}}  # fmt: skip


def event_row(i: int, k: int, app_id: int) -> dict:
    return {"at": NOW - timedelta(minutes=i * 7 + k * 997), "actor_label": f"user{(i + k) % 300:03d}",
            "action": ACTIONS[(i + k) % 5], "application_id": app_id, "detail": f"bench event {k}"}  # fmt: skip


def measure(client, runs: int) -> dict[str, dict]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    out = {}
    for name, url in PAGES.items():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")
        # Read before the next request: each request empties the connection's query log.
        count, slowest = len(queries), max(queries.captured_queries, key=lambda q: float(q["time"]))["sql"]
        ms = timed(lambda url=url: client.get(url), runs) * 1000
        out[name] = {"ms": round(ms, 1), "queries": count, "rows_sql": slowest}
    return out


def baseline_ms(runs: int) -> float:
    from certmgr.models import Certificate

    return timed(lambda: list(Certificate.objects.order_by("not_after")[:50].values()), runs) * 1000


def explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql)
        return "\n".join("    " + row[0] for row in cursor.fetchall())


def admin_client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    admin = get_user_model().objects.create_superuser("bench-admin", "bench@example.com", None)
    client = Client(HTTP_X_FORWARDED_PROTO="https")  # production settings redirect plain http
    client.force_login(admin)
    return client


def report(args, small: dict, large: dict, base: float, db: str) -> dict:
    print(f"{db}: {args.apps} applications, {args.certs} certificates, {args.events} audit events; "
          f"median of {args.runs} renders as an admin")  # fmt: skip
    print(f"baseline: indexed SELECT of 50 certificates by expiry: {base:.2f} ms")
    print(f"{'page':46} {'ms':>7} {'× base':>7} {'queries at N/10 → N':>20}")
    for name, url in PAGES.items():
        row, few = large[name], small[name]
        print(
            f"{name:46} {row['ms']:7.1f} {row['ms'] / base:7.1f} {few['queries']:>12} → {row['queries']:<3}  {url}"
        )
    constant = all(small[name]["queries"] == large[name]["queries"] for name in PAGES)
    print(f"query counts constant in N: {'yes' if constant else 'NO'}")
    summary = {
        "database": db, "apps": args.apps, "certs": args.certs, "events": args.events, "baseline_ms": round(base, 2),
        "constant_queries": constant, "target_ms": TARGET_MS,
        "all_under_150": all(large[name]["ms"] < TARGET_MS for name in PAGES),
        "over_150": [name for name in PAGES if large[name]["ms"] >= TARGET_MS],
        "pages": {name: {"url": PAGES[name], "ms": large[name]["ms"], "vs_baseline": round(large[name]["ms"] / base, 1),
                         "queries": large[name]["queries"], "queries_at_tenth": small[name]["queries"]} for name in PAGES},
    }  # fmt: skip
    print(f"every page under {TARGET_MS} ms: {'yes' if summary['all_under_150'] else 'NO'}")
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--certs", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=100_000, help="audit log entries")
    parser.add_argument("--runs", type=int, default=5, help="renders per page; the median counts")
    parser.add_argument("--explain", action="store_true", help="PostgreSQL's plan of each page's row query")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="certmgr-pages-bench-") as tmp:
        set_up_portal(Path(tmp))
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection, connections

        settings.STATIC_ROOT = Path(tmp) / "static"  # templates use whitenoise's hashed names
        call_command("collectstatic", "--noinput", verbosity=0)
        with mock.patch("django.utils.timezone.now", return_value=NOW):
            client = admin_client()
            tenth = args.apps // 10
            start = perf_counter()
            fill(0, tenth, args.certs // 10, args.events // 10)
            small = measure(client, args.runs)
            fill(tenth, args.apps, args.certs, args.events)
            print(f"filled in {perf_counter() - start:.0f} s")
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    # What autovacuum does to a live database: statistics, and the visibility map
                    # that lets the counts read an index alone (index-only scans).
                    cursor.execute("VACUUM ANALYZE")
            large = measure(client, args.runs)
            base = baseline_ms(args.runs * 4)
        summary = report(args, small, large, base, connection.vendor)
        if args.explain and connection.vendor == "postgresql":
            for name in PAGES:
                print(f"{name}:\n{explain(large[name]['rows_sql'])}")
        print(json.dumps(summary))  # the last line
        if os.environ.get("DATABASE_URL"):
            call_command("flush", "--noinput", verbosity=0)
        connections.close_all()
    return summary


if __name__ == "__main__":
    main()
