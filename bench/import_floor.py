"""The floor under a per-application import: its database statements alone, against the same baseline.

    .venv/bin/python bench/import_floor.py [--runs 300] [--together]   # DATABASE_URL=postgres://... for PostgreSQL

``import_certs --create-app`` of 10 files (bench/import_bench.py's per-application runs) stores an
application, 10 certificates and 10 audit rows in one transaction. This times the statements such
a run cannot do without, sent from the same process with no ORM, no parsing and no results (the
application looked up by slug, BEGIN, its INSERT, the certificates' COPY on PostgreSQL or INSERT
on SQLite, their ids read back, the audit rows, COMMIT), each step on its own (``--together``: sent
in psycopg's pipeline mode instead), and, on other
directories of the same bundle, the command itself; each run against the same facts of its own 10
files with cryptography alone, measured right before it (as import_bench.py does). What the floor
costs is what no change to the command's Python can take away.

The database is a temporary SQLite file unless DATABASE_URL names one: that must be an empty
scratch database; it is migrated, and emptied again at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from collections import Counter
from pathlib import Path
from time import perf_counter

import import_bench as ib

STEPS = ("look-up", "begin + application", "certificates", "ids read back", "audit rows", "commit")


def floor_run(slug: str, templates: tuple[list[dict], list[dict]], steps: Counter, together: bool) -> None:
    """The statements of one run, with the rows of the template run under a new application; with
    ``together``, sent to PostgreSQL in psycopg's pipeline mode (lib/roundtrip, as the scheduled
    health check sends its batches), where COPY cannot run: one INSERT ... RETURNING for the
    certificates, which gives their ids, and an INSERT for the audit rows."""
    from django.db import connection, transaction
    from django.utils import timezone

    from certmgr.lib import bulk, roundtrip
    from certmgr.models import Application, AuditEvent, Certificate

    certificates, events = templates
    quote = connection.ops.quote_name
    table = quote(Application._meta.db_table)
    start = perf_counter()

    def step(name: str) -> None:
        nonlocal start
        now = perf_counter()
        steps[name] += now - start
        start = now

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote('id')} FROM {table} WHERE {quote('slug')} = %s", [slug])  # noqa: S608
        cursor.fetchall()
    step("look-up")
    with transaction.atomic(), roundtrip.together() if together else contextlib.nullcontext():
        app = Application(slug=slug, name=slug, created_at=timezone.now())
        bulk.send_numbered(Application, [app]).rows()
        step("begin + application")
        # The same certificates under another tenant: the fingerprints are unique per tenant.
        rows = [{**row, "application_id": app.pk, "tenant": slug} for row in certificates]
        if together:
            inserted = [Certificate(**row) for row in rows]
            bulk.send_numbered(Certificate, inserted).rows()
            ids = {certificate.fingerprint: certificate.pk for certificate in inserted}
            step("certificates")
        else:
            bulk.insert(Certificate, rows)
            step("certificates")
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {quote('fingerprint')}, {quote('id')} FROM {quote(Certificate._meta.db_table)} "  # noqa: S608
                    f"WHERE {quote('application_id')} = %s",
                    [app.pk],
                )
                ids = dict(cursor.fetchall())
        step("ids read back")
        bulk.insert(
            AuditEvent,
            [
                {**event, "application_id": app.pk, "certificate_id": ids[row["fingerprint"]]}
                for event, row in zip(events, rows, strict=True)
            ],
        )
        step("audit rows")
    step("commit")


def templates_from(slug: str) -> tuple[list[dict], list[dict]]:
    """The rows a real run stored: its certificates and their CERTIFICATE_ADDED audit rows, in one order."""
    from certmgr.models import AuditEvent, Certificate

    certificates = list(Certificate.objects.filter(application__slug=slug).order_by("pk").values())
    by_certificate = {
        event["certificate_id"]: event
        for event in AuditEvent.objects.filter(
            application__slug=slug, action=AuditEvent.Action.CERTIFICATE_ADDED
        ).values()
    }
    events = [by_certificate[row["id"]] for row in certificates]
    for row in (*certificates, *events):
        row.pop("id")
    return certificates, events


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="runs of each kind (default 300)")
    parser.add_argument(
        "--together", action="store_true", help="send the statements in psycopg's pipeline mode (PostgreSQL)"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("need --runs of at least 1")
    with tempfile.TemporaryDirectory(prefix="certmgr-floor-bench-") as tmp_name:
        tmp = Path(tmp_name)
        ib.configure(tmp)
        from django.db import connection, connections

        try:
            dirs = ib.generate_bundle(tmp / "bundle", 10 * (2 * args.runs + 11), 2 * args.runs + 11)
            ib.import_with_command([dirs[0]], dirs[0].name)
            templates = templates_from(dirs[0].name)
            for d in dirs[1:11]:  # warm-up of both
                ib.import_with_command([d], d.name)
                floor_run(f"warm-{d.name}", templates, Counter(), args.together)
            steps: Counter = Counter()
            totals: Counter = Counter()
            for n, d in enumerate(dirs[11:]):
                files = sorted(d.iterdir())
                kind = "floor" if n % 2 == 0 else "command"
                totals[f"{kind}_baseline"] += ib.baseline_same_facts_seconds(files)
                start = perf_counter()
                if kind == "floor":
                    floor_run(f"floor-{d.name}", templates, steps, args.together)
                else:
                    ib.import_with_command([d], d.name)
                totals[kind] += perf_counter() - start
        finally:
            ib.wipe()
            connections.close_all()

    def ms(seconds: float) -> float:
        return round(seconds / args.runs * 1000, 3)

    summary = {
        "database": connection.vendor,
        "runs": args.runs,
        "together": args.together,
        "floor_ms": ms(totals["floor"]),
        "floor_baseline_ms": ms(totals["floor_baseline"]),
        "floor_ratio": round(totals["floor"] / totals["floor_baseline"], 2),
        "command_ms": ms(totals["command"]),
        "command_baseline_ms": ms(totals["command_baseline"]),
        "command_ratio": round(totals["command"] / totals["command_baseline"], 2),
        "steps_ms": {name: ms(steps[name]) for name in STEPS},
    }
    sent = ", the statements sent together" if args.together else ""
    print(f"database: {connection.vendor}; {args.runs} runs of each, 10 files a run{sent}")
    for name in STEPS:
        print(f"  {name:22s} {summary['steps_ms'][name]:6.3f} ms")
    print(
        f"statements alone: {summary['floor_ms']:.2f} ms a run, {summary['floor_ratio']}x the same facts "
        f"with cryptography ({summary['floor_baseline_ms']:.2f} ms)"
    )
    print(
        f"import_certs --create-app: {summary['command_ms']:.2f} ms a run, {summary['command_ratio']}x "
        f"({summary['command_baseline_ms']:.2f} ms)"
    )
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
