"""The schedule of the health check: which applications are due, their claims, and the runs of
many of them by a pool of threads (runner.Check for each), a batch per transaction.

Scheduled checks are claimed with a conditional UPDATE on next_check_at, so any number of
processes can run them and each due application is checked once per interval.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from ..inventory.keys import VaultError
from ..lib import bulk, roundtrip
from ..models import Application, AuditEvent, Certificate, HealthCheckRun
from .runner import Check, NotCheckable, health_by_application, previous_health_query, save_health

log = logging.getLogger(__name__)


def due(now: datetime | None = None, slug: str | None = None):
    now = now or timezone.now()
    usable = Certificate.objects.filter(
        application=OuterRef("pk"),
        lifecycle=Certificate.Lifecycle.ACTIVE,
        encrypted_private_key__isnull=False,
    )
    apps = (
        Application.objects.filter(checks_paused=False)
        .exclude(tenant_url="")
        .exclude(client_id="")
        .filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
        .filter(Exists(usable))
    )
    return apps.filter(slug=slug) if slug else apps


def claim(application: Application, now: datetime) -> bool:
    """The conditional UPDATE: it succeeds for one claimant only, whatever the number of processes."""
    return bool(claim_due([application], now))


def claim_due(applications: list[Application], now: datetime) -> list[Application]:
    """Those of ``applications`` this caller has claimed, each until ``now`` + its interval.

    One conditional UPDATE per interval in the list (usually one): it takes only the rows still
    due at ``now``. Any other claimant's UPDATE has moved next_check_at past ``now`` (an interval
    is at least 5 minutes), and so has a rotation's reset to its own, later, now: each due
    application is claimed once, whatever the number of processes. RETURNING names the rows won.
    """
    return _send_claims(applications, now).rows()


def _send_claims(applications: list[Application], now: datetime) -> roundtrip.Pending:
    """claim_due, sent (roundtrip.send): read, the applications claimed."""
    by_interval: dict[int, list[Application]] = {}
    for application in applications:
        by_interval.setdefault(application.check_interval_minutes, []).append(application)
    sent = []
    for minutes, group in by_interval.items():
        claimed_until = now + timedelta(minutes=minutes)
        sql, params = _take_due_sql([application.pk for application in group], now, claimed_until)
        sent.append(
            (group, claimed_until, roundtrip.send(sql, params, lambda rows: {row[0] for row in rows}))
        )

    def won() -> list[Application]:
        taken: set[int] = set()
        for group, claimed_until, pending in sent:
            for application in group:
                if application.pk in pending.rows():
                    application.next_check_at = claimed_until
            taken |= pending.rows()
        return [application for application in applications if application.pk in taken]

    return roundtrip.Pending(won)


def _take_due_sql(pks: list[int], now: datetime, until: datetime) -> tuple[str, list]:
    # Raw SQL for RETURNING (PostgreSQL; SQLite since 3.35), which QuerySet.update lacks; the
    # datetimes are adapted as the ORM adapts them, so the comparison is the ORM's __lte.
    ops, meta = connection.ops, Application._meta
    table, pk = ops.quote_name(meta.db_table), ops.quote_name(meta.pk.column)
    column = ops.quote_name(meta.get_field("next_check_at").column)
    marks = ", ".join(["%s"] * len(pks))
    sql = (
        f"UPDATE {table} SET {column} = %s WHERE {pk} IN ({marks}) "  # noqa: S608
        f"AND ({column} IS NULL OR {column} <= %s) RETURNING {pk}"  # names from the model, values bound
    )
    return sql, [ops.adapt_datetimefield_value(until), *pks, ops.adapt_datetimefield_value(now)]


# Scheduled checks are claimed a few at a time (one transaction per batch, which also stores the
# runs of the batch before); an instance that dies leaves at most this many applications claimed
# and unchecked until their interval ends.
CLAIM_BATCH = 8


def run_due(now: datetime | None = None, slug: str | None = None, workers: int | None = None):
    """Check everything due at ``now`` with up to ``workers`` threads; the stored runs, by slug.

    Each thread claims a few applications (at most CLAIM_BATCH) right before checking them, so several
    instances share a long list (in shuffled order, to rarely want the same one) instead of the
    first taking it all and leaving it unchecked if it dies.
    """
    now = now or timezone.now()
    workers = max(1, workers or settings.CERTMGR_HEALTHCHECK_WORKERS)
    candidates = list(due(now, slug))
    random.shuffle(candidates)
    queue = iter(candidates)
    lock = threading.Lock()
    left = len(candidates)

    def next_applications() -> list[Application]:
        nonlocal left
        with lock:
            # In the pool, a thread's share of what is left (guided self-scheduling), up to
            # CLAIM_BATCH: few transactions while much is left, then ever smaller batches, down to
            # one application, so that the threads end at about the same time. (Batches of a fixed
            # quarter of the first share left threads checking their last batch while the others
            # had ended: with 8 workers and IAS 50 ms away, 5.0x over one worker, against 6.1x
            # now, medians of 6 rounds on PostgreSQL of bench/healthcheck_bench.py's two pool rows.)
            size = CLAIM_BATCH if workers == 1 else max(1, min(CLAIM_BATCH, left // workers))
            taken = list(itertools.islice(queue, size))
            left -= len(taken)
            return taken

    drain = functools.partial(_drain, next_applications, now)

    # An in-memory SQLite database (the test suite's) is one connection: no threads there.
    if workers == 1 or len(candidates) < 2 or getattr(connection, "is_in_memory_db", lambda: False)():
        runs = drain()
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="healthcheck") as pool:
            batches = [pool.submit(_in_thread, drain) for _ in range(min(workers, len(candidates)))]
            runs = [run for batch in batches for run in batch.result()]
    return sorted(runs, key=lambda run: run.application.slug)


def _drain(next_applications, now: datetime) -> list[HealthCheckRun]:
    """Check batches of applications until there are none left; the stored runs.

    One transaction per batch stores the runs of the batch before (their flows ran) and claims
    this batch, with the pick of each certificate and the audited read of each key (all audit
    rows in one INSERT): committed before IAS is called (other instances must see the claims, the
    audit log the key reads, and no row lock may wait on the network). The flows run outside any
    transaction. A key that cannot be read ends the run, as it did, once the batch's other checks
    are done and stored.

    The batch's certificates and its runs' previous health are each read in one query.
    """
    runs: list[HealthCheckRun] = []
    done: list[Check] = []  # their flows ran; their runs are stored in the next transaction
    unreadable: VaultError | None = None
    while True:
        applications = [] if unreadable else next_applications()
        if not applications and not done:
            if unreadable is not None:
                raise unreadable
            return runs
        stored, checks, failure = _store_and_claim(done, applications, now)
        runs.extend(stored)
        unreadable = unreadable or failure
        for check in checks:
            for _ in check.steps():
                pass
        done = checks


def _store_and_claim(
    done: list[Check], applications: list[Application], now: datetime
) -> tuple[list[HealthCheckRun], list[Check], VaultError | None]:
    """The runs of ``done`` stored and ``applications`` claimed and prepared, in one transaction;
    the runs, the checks ready to run and a key that could not be read. If that transaction fails
    (an application deleted while its check ran fails the commit), each run is stored in its own,
    so that one cannot take the others with it, and then the claims in one more.

    The transaction's statements go to PostgreSQL in two groups (roundtrip.together): what
    storing the runs and claiming the batch need, all read back before anything else runs (the
    health's notices are ORM code, which must not run in a pipeline), then the health and the
    audit rows: five round trips (BEGIN, the first group, its end, the second, COMMIT) where one
    by one they took nine."""
    try:
        with _one_writer(), transaction.atomic():
            with roundtrip.together():
                storing = _send_runs(done)
                claiming = _send_claim_and_usable(applications, now)
                roundtrip.read(*(storing.pending if storing else ()), *claiming)
            audit_rows: list[AuditEvent] = []
            stored, health_rows = _store(done, audit_rows, storing)
            checks, unreadable = _claim_and_prepare(applications, now, audit_rows, claiming)
            with roundtrip.together():
                save_health(health_rows)
                bulk.insert(AuditEvent, audit_rows)
        return stored, checks, unreadable
    except DatabaseError:
        if not done:
            raise
    stored = []
    for check in done:
        try:
            with _one_writer(), transaction.atomic():
                audit_rows = []
                run, health_rows = _store([check], audit_rows)  # kept only once committed
                save_health(health_rows)
                bulk.insert(AuditEvent, audit_rows)
            stored += run
        except DatabaseError as exc:
            log.warning("health check run of %s not stored: %s", check.application.slug, type(exc).__name__)
    with _one_writer(), transaction.atomic():
        audit_rows = []
        checks, unreadable = _claim_and_prepare(applications, now, audit_rows)
        bulk.insert(AuditEvent, audit_rows)
    return stored, checks, unreadable


def _send_usable(applications: list[Application]) -> roundtrip.Pending:
    """certificate_to_check's candidates for several applications, in one query, sent: read, a
    list of them per application."""

    def by_application(certificates: list[Certificate]) -> dict[int, list[Certificate]]:
        usable: dict[int, list[Certificate]] = {application.pk: [] for application in applications}
        for certificate in certificates:
            usable[certificate.application_id].append(certificate)
        return usable

    if not applications:
        return roundtrip.Pending(lambda: {})
    candidates = Certificate.objects.active().filter(
        application_id__in=[application.pk for application in applications],
        encrypted_private_key__isnull=False,
    )
    certificates = roundtrip.send_instances(candidates.order_by())  # any order: _longest picks
    return roundtrip.Pending(lambda: by_application(certificates.rows()))


def _send_claim_and_usable(applications: list[Application], now: datetime):
    """Sent: the claim of ``applications``, then the certificates each could use (all of them
    asked for, those of the claimed ones used)."""
    return _send_claims(applications, now), _send_usable(applications)


def _claim_and_prepare(
    applications: list[Application], now: datetime, audit_rows: list[AuditEvent], sent=None
) -> tuple[list[Check], VaultError | None]:
    """In the caller's transaction: the checks of the applications claimed, their keys read (the
    reads' audit rows appended to ``audit_rows``); a key that could not be read. ``sent``: the
    claim and the certificates, already sent (_send_claim_and_usable)."""
    checks: list[Check] = []
    unreadable = None
    claiming, certificates = sent or _send_claim_and_usable(applications, now)
    claimed, usable = claiming.rows(), certificates.rows()
    for application in claimed:
        check = Check(
            application, trigger=HealthCheckRun.Trigger.SCHEDULED, actor_label="scheduled health check"
        )
        try:
            check.prepare(audit_rows, usable[application.pk])
        except NotCheckable as exc:  # the certificate went away between the list and the claim
            log.info("health check of %s skipped: %s", application.slug, exc)
            continue
        except VaultError as exc:  # raised before anything is written: the claim stands, as it did
            unreadable = exc
            continue
        checks.append(check)
    return checks, unreadable


class _SentRuns(NamedTuple):
    previous: roundtrip.Pending  # (pk, ok, code) of each application's last run
    runs: list[HealthCheckRun]
    numbering: roundtrip.Pending  # read: the runs have their primary keys

    @property
    def pending(self) -> tuple[roundtrip.Pending, ...]:
        return self.previous, self.numbering


def _send_runs(done: list[Check]) -> _SentRuns | None:
    """Sent: the previous health of ``done``'s applications, then the INSERT of their runs."""
    if not done:
        return None
    previous = roundtrip.send_values(previous_health_query([check.application.pk for check in done]))
    inserted = [check.new_run() for check in done]
    return _SentRuns(previous, inserted, bulk.send_numbered(HealthCheckRun, inserted))


def _store(
    done: list[Check], audit_rows: list[AuditEvent], sent: _SentRuns | None = None
) -> tuple[list[HealthCheckRun], list[Application]]:
    """In the caller's transaction: the runs of ``done`` stored, their audit rows appended to
    ``audit_rows``; the runs, and the applications whose health they become, for save_health.
    ``sent``: what _send_runs sent, if it did already."""
    if not done:
        return [], []
    sent = sent or _send_runs(done)
    previous = health_by_application(sent.previous.rows())
    sent.numbering.rows()
    health_rows: list[Application] = []
    stored = [
        check.store(audit_rows, previous.get(check.application.pk), run, health_rows)
        for check, run in zip(done, sent.runs, strict=True)
    ]
    return stored, health_rows


# SQLite has one writer at a time: the pool's threads take turns here, woken as soon as the one
# before is done, instead of in SQLite's busy handler, which sleeps ever longer (up to 100 ms) between tries.
_sqlite_writer = threading.Lock()


def _one_writer():
    return _sqlite_writer if connection.vendor == "sqlite" else contextlib.nullcontext()


def _in_thread(work):
    close_old_connections()
    try:
        return work()
    finally:
        connection.close()
