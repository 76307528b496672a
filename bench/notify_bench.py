"""Notification planning benchmark: finding every notice due among many certificates (one process, no network).

    .venv/bin/python bench/notify_bench.py [--certs 100000] [--apps 20000]   # --certs 5000 --apps 1000: smoke run

Fills the database (not timed) with ``apps`` applications of ``certs / apps`` made-up certificates
each -- no X.509 is generated: the query is under test, not parsing. Per application: the current
active certificate, whose expiry is spread from 40 days before a fixed instant to 360 days after
it; an older active one it supersedes (20 to 120 days earlier; the renewal rule drops it); the
rest retired. 10 % of the applications have their own thresholds (30, 14, 3 days), 3 % of the
current certificates are muted. The ledger holds what a portal running for years would: for
30 % of the due certificates a notice at a larger threshold (still due), for 15 % the notice
already sent (no longer due), expired notices, notices of superseded and retired certificates.
One enabled webhook channel per application, so every application is asked about.

Then it times ``notify.find_due(NOW, application ids)`` against a plain indexed SELECT of the
active certificates expiring within 60 days (target: at most 2x), both in this process, medians
of ``rounds`` after a warm-up, in alternating order. The result of ``find_due`` is checked
against what the generator knows is due. It prints the query plan of the candidate query, the
time of each step of ``find_due``, and a cProfile of one call when the target is missed (or
with --profile).

The database is a temporary SQLite file unless DATABASE_URL names one: that must be an empty
scratch database; it is migrated, and emptied again at the end.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import json
import os
import platform
import pstats
import random
import re
import statistics
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter

from portal_env import set_up_portal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # find_due runs "at" this instant; no real clock in the data
FIRST_EXPIRY = NOW - timedelta(days=40)  # current certificates expire from here over SPREAD
SPREAD = timedelta(days=400)
WINDOW = timedelta(days=60)  # the baseline's "everything within 60 days"
CUSTOM_THRESHOLDS = [30, 14, 3]  # for CUSTOM_SHARE of the applications; the others use the settings
CUSTOM_SHARE = 0.10
MUTED_SHARE, UNMUTED_SHARE = 0.03, 0.02  # muted until after NOW; muted until before NOW
LARGER_SHARE, SENT_SHARE = 0.30, 0.15  # ledger: notified at a larger threshold; at the current one
EXPIRED_SENT_SHARE = 0.60  # expired current certificates whose expired notice went out already
BATCH = 5_000
TARGET = 2.0


def made_up_certificate(app_id: int, n: int, not_after: datetime, lifecycle: str, muted_until=None):
    """A row with every required fact filled in, none of them parsed from anything."""
    from certmgr.models import Certificate

    digest = hashlib.sha256(f"bench-notify {app_id} {n}".encode()).digest()
    return Certificate(
        application_id=app_id,
        pem=f"-----BEGIN CERTIFICATE-----\nbench {app_id} {n}\n-----END CERTIFICATE-----\n",
        subject=f"CN=bench-notify-{app_id} client {n},O=Bench Corp,C=DE",
        issuer="CN=Bench Client CA",
        serial=format(0x300000 + app_id * 100 + n, "x"),
        not_before=not_after - timedelta(days=365),
        not_after=not_after,
        fingerprint=digest.hex(),
        x5t_s256=base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
        key_algorithm="RSA",
        key_size=2048,
        extended_key_usage=["clientAuth"],
        source_format="pem",
        lifecycle=lifecycle,
        uploaded_at=not_after - timedelta(days=360),
        muted_until=muted_until,
    )


def crossed(not_after: datetime, thresholds) -> list[int]:
    """Thresholds already crossed at NOW (days left <= threshold), as core.notices.due_notice counts."""
    left = not_after - NOW
    return sorted(days for days in set(thresholds) if left <= timedelta(days=days))


def populate(apps: int, certs: int, seed: int) -> dict[str, object]:
    """Applications, channels, certificates and ledger rows; returns counts and what must be due:
    {certificate id: Due} for the current certificates the rules leave due."""
    from django.conf import settings

    from certmgr.core.notices import due_notice, horizon
    from certmgr.models import Application, Certificate
    from certmgr.notifications.models import Notice, NotificationChannel

    rng = random.Random(seed)
    default = tuple(settings.CERTMGR_NOTICE_THRESHOLDS)
    Application.objects.bulk_create(
        [
            Application(
                name=f"bench-notify-{a:06d}",
                slug=f"bench-notify-{a:06d}",
                notice_thresholds=list(CUSTOM_THRESHOLDS) if rng.random() < CUSTOM_SHARE else [],
            )
            for a in range(apps)
        ],
        batch_size=BATCH,
    )
    applications = list(Application.objects.order_by("pk").values_list("pk", "notice_thresholds"))
    NotificationChannel.objects.bulk_create(
        [
            NotificationChannel(application_id=pk, kind="webhook", name="bench hook", created_at=NOW)
            for pk, _ in applications
        ],
        batch_size=BATCH,
    )
    channel_of = dict(NotificationChannel.objects.values_list("application_id", "pk"))

    rows, plans = [], []  # plans: (application id, thresholds, role, certificate index, [(event, days)])
    per_app, extra = divmod(certs, apps)
    for i, (app_id, own) in enumerate(applications):
        thresholds = tuple(own or default)
        current = FIRST_EXPIRY + timedelta(seconds=round(rng.random() * SPREAD.total_seconds()))
        draw = rng.random()
        muted = NOW + timedelta(days=10) if draw < MUTED_SHARE else None
        if MUTED_SHARE <= draw < MUTED_SHARE + UNMUTED_SHARE:
            muted = NOW - timedelta(days=5)
        rows.append(made_up_certificate(app_id, 0, current, "active", muted))
        plans.append((app_id, thresholds, "current", len(rows) - 1, current_ledger(rng, current, thresholds)))
        for n in range(1, per_app + (i < extra)):
            if n == 1:  # renewed, not yet retired: the renewal rule must drop it
                not_after = current - timedelta(seconds=round(rng.uniform(20, 120) * 86_400))
                rows.append(made_up_certificate(app_id, n, not_after, "active"))
                warned = crossed(not_after, thresholds)
                ledger = [("threshold", warned[0])] if warned and rng.random() < 0.5 else []
            else:
                not_after = current - timedelta(days=365 * (n - 1) - rng.randint(0, 30))
                rows.append(made_up_certificate(app_id, n, not_after, "retired"))
                ledger = [("threshold", 30), ("resolved", 0)]
            plans.append((app_id, thresholds, "older", len(rows) - 1, ledger))
    Certificate.objects.bulk_create(rows, batch_size=BATCH)
    if any(row.pk is None for row in rows):
        sys.exit("bulk_create did not return primary keys: this database is not supported by the benchmark.")

    notices, expected = [], {}
    for app_id, thresholds, role, index, ledger in plans:
        certificate = rows[index]
        for event, days in ledger:
            notices.append(
                Notice(
                    application_id=app_id,
                    certificate_id=certificate.pk,
                    channel_id=channel_of[app_id],
                    event=event,
                    threshold=days,
                    recipient="",
                    state="sent",
                    attempts=1,
                    next_attempt_at=NOW - timedelta(days=1),
                    sent_at=NOW - timedelta(days=1),
                    created_at=NOW - timedelta(days=1),
                )
            )
        muted = certificate.muted_until is not None and certificate.muted_until > NOW
        if role != "current" or muted or certificate.not_after > NOW + horizon(thresholds):
            continue
        due = due_notice(certificate.not_after, NOW, thresholds, ledger)
        if due is not None:
            expected[certificate.pk] = due
    Notice.objects.bulk_create(notices, batch_size=BATCH)
    return {"expected": expected, "notices": len(notices)}


def current_ledger(rng: random.Random, not_after: datetime, thresholds) -> list[tuple[str, int]]:
    """What the ledger already holds for a current certificate."""
    if not_after < NOW:
        return [("threshold", min(thresholds)), ("expired", 0)] if rng.random() < EXPIRED_SENT_SHARE else []
    passed = crossed(not_after, thresholds)
    if not passed:
        return []
    draw = rng.random()
    if draw < LARGER_SHARE and len(passed) > 1:
        return [("threshold", passed[1])]  # notified when it crossed the next larger one: still due
    if LARGER_SHARE <= draw < LARGER_SHARE + SENT_SHARE:
        return [("threshold", days) for days in passed[:2]]  # the most urgent went out: not due
    return []


def analyze() -> None:
    """Planner statistics, as autovacuum (PostgreSQL) or PRAGMA optimize (SQLite) keep them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def shorten_plan(plan: str) -> str:
    """Long literal lists (PostgreSQL prints every application id) become their length."""

    def count(match: re.Match) -> str:
        return f"'{{…{match.group(0).count(',') + 1} values…}}'"

    return re.sub(r"'\{[^}]{60,}\}'", count, plan)


def measure(actions: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds per action over ``rounds`` rounds after a warm-up round; the order
    alternates between rounds, so a drift of the machine does not favour one of them."""
    names = list(actions)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds + 1):
        for name in names if round_ % 2 == 0 else names[::-1]:
            start = perf_counter()
            actions[name]()
            elapsed = perf_counter() - start
            if round_:  # round 0 warms up: connection, statement and page caches
                times[name].append(elapsed)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def steps(app_ids: list[int], rounds: int) -> dict[str, float]:
    """The parts of find_due, each timed alone (medians, same rounds): the candidate query with its
    ledger rows, and the rules in Python over its result."""
    from django.conf import settings

    from certmgr.core.notices import horizon
    from certmgr.notifications import ledger as notify

    largest = horizon(settings.CERTMGR_NOTICE_THRESHOLDS)
    return measure(
        {
            "candidates": lambda: list(notify.due_certificates(NOW, largest)),
        },
        rounds,
    )


def profile(app_ids: list[int], top: int) -> None:
    from certmgr.notifications import ledger as notify

    profiler = cProfile.Profile()
    profiler.runcall(notify.find_due, NOW, app_ids)
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    print("\n--- cProfile: notify.find_due, one call, by cumulative time ---")
    stats.sort_stats("cumulative").print_stats(top)
    print("--- cProfile: notify.find_due, one call, by own time ---")
    stats.sort_stats("tottime").print_stats(top)


def wipe() -> None:
    from certmgr.models import Application, Certificate
    from certmgr.notifications.models import Notice, NotificationChannel

    Notice.objects.all().delete()
    NotificationChannel.objects.all().delete()
    Certificate.objects.all().delete()
    Application.objects.all().delete()


def run(args: argparse.Namespace) -> dict[str, object]:
    from django.db import connection

    from certmgr.models import Certificate
    from certmgr.notifications import ledger as notify
    from certmgr.notifications.models import NotificationChannel

    info = {"database": connection.vendor, "python": platform.python_version()}
    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']}), Python {info['python']}")
    start = perf_counter()
    made = populate(args.apps, args.certs, args.seed)
    analyze()
    expected = made["expected"]
    print(
        f"set up {args.certs} certificates in {args.apps} applications, {made['notices']} ledger rows, "
        f"{args.apps} webhook channels: {perf_counter() - start:.1f} s (not timed)"
    )
    # plan() asks about the applications with an enabled channel; here, all of them
    app_ids = list(NotificationChannel.objects.filter(enabled=True).values_list("application_id", flat=True))
    candidate_query = notify.due_certificates(NOW, WINDOW)
    plan_text = shorten_plan(candidate_query.explain())
    baseline_query = Certificate.objects.filter(lifecycle="active", not_after__lte=NOW + WINDOW).values_list(
        "id", "application_id", "not_after"
    )

    found = notify.find_due(NOW, app_ids)
    got = {item.certificate_id: item.due for item in found}
    if len(got) != len(found) or got != expected:
        missing, extra = expected.keys() - got.keys(), got.keys() - expected.keys()
        wrong = [pk for pk in expected.keys() & got.keys() if expected[pk] != got[pk]]
        sys.exit(
            f"find_due disagrees with the generator: {len(found)} found, {len(expected)} expected; "
            f"missing {sorted(missing)[:5]}…, extra {sorted(extra)[:5]}…, other notice {wrong[:5]}…"
        )
    rows = {
        "find_due": len(found),
        "baseline": len(list(baseline_query)),
        "candidates": len(list(candidate_query)),
    }
    secs = measure(
        {
            "baseline": lambda: list(baseline_query.all()),  # .all(): no result cache
            "find_due": lambda: notify.find_due(NOW, app_ids),
        },
        args.rounds,
    )
    parts = steps(app_ids, args.rounds)
    ratio = secs["find_due"] / secs["baseline"]
    met = ratio <= TARGET

    print("\ncandidate query, notify.due_certificates(NOW, 60 days), with its ledger rows:")
    print("  " + plan_text.replace("\n", "\n  "))
    print(f"\nmedian of {args.rounds} rounds after a warm-up, at {NOW:%Y-%m-%d %H:%M} UTC:")
    print(f"{'':58} {'rows':>7} {'ms':>9} {'vs baseline':>12}")
    table = [
        ("baseline: indexed SELECT, active, not_after <= NOW+60d", rows["baseline"], secs["baseline"]),
        ("notify.find_due(NOW, application ids)", rows["find_due"], secs["find_due"]),
    ]
    for label, count, seconds in table:
        print(f"{label:58} {count:7} {seconds * 1000:9.1f} {seconds / secs['baseline']:11.2f}×")
    print(f"ratio find_due / baseline: {ratio:.2f}× (target ≤ {TARGET:.0f}×: {'met' if met else 'NOT met'})")
    print(
        f"  the rows differ: the baseline returns every active certificate within 60 days ({rows['baseline']}),"
        f"\n  find_due only the latest-expiring active one per application, unmuted, inside its own thresholds,"
        f"\n  with a notice the ledger does not hold yet ({rows['find_due']}, checked against the generator)."
    )
    print("find_due step by step (each timed alone, medians):" if parts else "find_due steps: not timed")
    labels = {"candidates": f"candidate query with its ledger rows ({rows['candidates']} rows)"}
    for name, label in labels.items() if parts else ():
        print(f"  {label:56} {parts[name] * 1000:9.1f} ms {parts[name] / secs['baseline']:10.2f}×")
    summary = {
        **info, "certs": args.certs, "apps": args.apps, "rounds": args.rounds,
        "baseline_rows": rows["baseline"], "candidate_rows": rows["candidates"], "due_rows": rows["find_due"],
        "baseline_ms": round(secs["baseline"] * 1000, 2), "find_due_ms": round(secs["find_due"] * 1000, 2),
        **{f"{name}_ms": round(seconds * 1000, 2) for name, seconds in parts.items()},
        "ratio": round(ratio, 2), "target_met": met,
    }  # fmt: skip
    if args.profile or not met:
        profile(app_ids, args.top)
    print(json.dumps(summary))
    return summary


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--certs", type=int, default=100_000, help="certificates (default 100000)")
    parser.add_argument("--apps", type=int, default=20_000, help="applications (default 20000)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds after a warm-up; medians count")
    parser.add_argument("--seed", type=int, default=2026, help="of the made-up data (default 2026)")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one find_due call even if the target is met"
    )
    parser.add_argument("--top", type=int, default=25, help="functions listed per profile (default 25)")
    args = parser.parse_args(argv)
    if not 0 < args.apps <= args.certs or args.rounds < 1:
        parser.error("need 0 < --apps <= --certs and --rounds of at least 1")
    with tempfile.TemporaryDirectory(prefix="certmgr-notify-bench-") as tmp_name:
        set_up_portal(Path(tmp_name))
        from django.db import connections

        try:
            summary = run(args)
        finally:
            if os.environ.get("DATABASE_URL"):
                wipe()
            connections.close_all()
    return summary


if __name__ == "__main__":
    main()
