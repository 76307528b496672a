"""The token-flow health check as the portal runs it: the Django shell around core.tokenflow.

A check reads the application's active key (audited), runs the flow, and stores the run
without the token. Scheduled checks are claimed with a conditional UPDATE on next_check_at, so
any number of processes can run them and each due application is checked once per interval.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from ..core.tokenflow import StepResult, TokenFlow, TokenFlowOptions, TokenFlowRequest, TokenFlowResult
from ..inventory.keys import VaultError, read_private_key
from ..lib import bulk
from ..lib.policy import http_policy
from ..models import Application, AuditEvent, Certificate, HealthCheckRun
from ..notifications import ledger as notify

log = logging.getLogger(__name__)

IAS_DOMAINS = ("accounts.ondemand.com", "accounts.cloud.sap", "accounts400.ondemand.com")


class NotCheckable(Exception):
    pass


def certificate_to_check(application: Application) -> Certificate | None:
    """The active certificate with a stored key that lasts longest: what the application uses."""
    # Picked in Python: an ORDER BY not_after lets the database walk the not_after index of every
    # certificate instead of the few of this application.
    return _longest(application.certificates.active().filter(encrypted_private_key__isnull=False))


def _longest(usable) -> Certificate | None:
    return max(usable, key=lambda certificate: (certificate.not_after, certificate.pk), default=None)


def _usable_by_application(applications: list[Application]) -> dict[int, list[Certificate]]:
    """certificate_to_check's candidates for several applications, in one query."""
    usable: dict[int, list[Certificate]] = {application.pk: [] for application in applications}
    if applications:
        certificates = Certificate.objects.active().filter(
            application_id__in=list(usable), encrypted_private_key__isnull=False
        )
        for certificate in certificates:
            usable[certificate.application_id].append(certificate)
    return usable


def _previous_health(application_ids: list[int]) -> dict[int, tuple[bool | None, str]]:
    """record's ``previous`` for several applications, in one query."""
    rows = Application.objects.filter(pk__in=application_ids).values_list(
        "pk", "last_check__ok", "last_check__code"
    )
    return {pk: (ok, code or "") for pk, ok, code in rows}


def why_not_checkable(application: Application, certificates=None) -> str:
    """Why the check cannot run, or "". ``certificates``: the application's, if already loaded."""
    if not application.tenant_url:
        return "Set the IAS tenant URL of this application first."
    if not application.client_id:
        return "Set the client id of this application first."
    if certificates is not None:
        usable = any(c.lifecycle == Certificate.Lifecycle.ACTIVE and c.has_private_key for c in certificates)
    else:
        usable = certificate_to_check(application) is not None
    return "" if usable else NO_KEY


NO_KEY = "No active certificate with a stored private key: upload the certificate with its key."


def trusted_domains(application: Application) -> tuple[str, ...]:
    """The binding's domains; without them IAS's own. (The tenant URL's own host is accepted as
    the issuer by the token flow itself, not as a domain: no label under it would be.)"""
    if application.domains:
        return tuple(str(domain) for domain in application.domains)
    return IAS_DOMAINS


def why_not_with(application: Application, certificate: Certificate) -> str:
    """Why ``certificate`` cannot be checked for ``application``, or ""."""
    reason = why_not_checkable(application, None)
    if reason and reason != NO_KEY:
        return reason
    if certificate.application_id != application.pk:
        return "The certificate belongs to another application."
    if certificate.lifecycle == Certificate.Lifecycle.RETIRED:
        return "The certificate is retired: IAS may no longer know it."
    if not certificate.has_private_key:
        return "The portal holds no private key for this certificate: upload it with its key."
    return ""


class Check:
    """Iterate for the steps as they complete; ``run`` holds the stored HealthCheckRun afterwards.

    Without ``certificate`` the check uses the one the application uses (``certificate_to_check``);
    with one (a staged certificate before the switch, say), it uses that one and changes nothing
    about which is active: the run records its certificate, and only a run of the certificate in
    use becomes the application's health (dashboard, notices, the lockout guard's pause).
    """

    def __init__(
        self,
        application: Application,
        *,
        trigger: str,
        actor=None,
        actor_label: str,
        remote_addr=None,
        certificate: Certificate | None = None,
    ):
        self.application, self.trigger, self.certificate = application, trigger, certificate
        self.actor, self.actor_label, self.remote_addr = actor, actor_label, remote_addr
        self.run: HealthCheckRun | None = None
        self._prepared: tuple[Certificate, bool, datetime, TokenFlowRequest] | None = None
        self._result: TokenFlowResult | None = None

    def prepare(
        self, audit_rows: list[AuditEvent] | None = None, usable: list[Certificate] | None = None
    ) -> None:
        """Pick the certificate and read its key (audited): what runs before any call to IAS, so a
        caller may put it into a transaction of its own (the scheduled check: with its claim).
        NotCheckable if the check cannot run; once only. ``audit_rows``: see read_private_key;
        ``usable``: the application's active certificates with a key, if loaded in this transaction."""
        if self._prepared is not None:
            return
        application = self.application
        in_use = certificate_to_check(application) if usable is None else _longest(usable)
        if self.certificate is None:
            certificate = in_use
            reason = why_not_checkable(application, [certificate] if certificate else [])
        else:
            certificate = self.certificate
            reason = why_not_with(application, certificate)
        if reason:
            raise NotCheckable(reason)
        started = timezone.now()
        request = self._request(certificate, audit_rows)
        self._prepared = (certificate, in_use is not None and certificate.pk == in_use.pk, started, request)

    def __iter__(self) -> Iterator[StepResult]:
        yield from self.steps()
        self.store()

    def steps(self) -> Iterator[StepResult]:
        """The token flow's steps, as they complete; nothing stored yet (``store``)."""
        self.prepare()
        assert self._prepared is not None
        flow = TokenFlow(self._prepared[3], TokenFlowOptions(policy=http_policy()))
        yield from flow
        self._result = flow.result

    def new_run(self) -> HealthCheckRun:
        """The run, not saved yet (the scheduled checks insert a batch's runs at once; then ``store``)."""
        assert self._prepared is not None and self._result is not None
        certificate, _, started, _ = self._prepared
        return _new_run(self.application, certificate, self._result, self.trigger, started, self.actor_label)

    def store(
        self,
        audit_rows: list[AuditEvent] | None = None,
        previous: tuple[bool | None, str] | None = None,
        run: HealthCheckRun | None = None,
        health_rows: list[Application] | None = None,
    ) -> HealthCheckRun:
        """The run, stored (and the application's health, for the certificate in use); with
        ``audit_rows``, its audit row is appended there for the caller to save in its transaction,
        with ``health_rows`` the application whose health it becomes (see record)."""
        assert self._prepared is not None and self._result is not None
        certificate, in_use, started, _ = self._prepared
        self.run = record(
            self.application,
            certificate,
            self._result,
            trigger=self.trigger,
            started=started,
            actor_label=self.actor_label,
            actor=self.actor,
            remote_addr=self.remote_addr,
            in_use=in_use,
            audit_rows=audit_rows,
            previous=previous,
            run=run,
            health_rows=health_rows,
        )
        return self.run

    def _request(self, certificate: Certificate, audit_rows: list[AuditEvent] | None) -> TokenFlowRequest:
        application = self.application
        key_der = read_private_key(
            certificate,
            actor=self.actor,
            actor_label=self.actor_label,
            remote_addr=self.remote_addr,
            purpose=f"token-flow health check ({self.trigger})",
            audit_rows=audit_rows,
        )
        return TokenFlowRequest(
            tenant_url=application.tenant_url,
            client_id=application.client_id,
            certificate_pem=(certificate.chain_pem or certificate.pem).encode("ascii"),  # leaf first
            key_der=key_der,
            trusted_domains=trusted_domains(application),
            backend_url=application.backend_url,
            backend_mtls=application.backend_mtls,
            app_tid=application.app_tid,
        )


def run_check(application: Application, **kwargs) -> HealthCheckRun:
    check = Check(application, **kwargs)
    for _ in check:
        pass
    return check.run


def record(
    application,
    certificate,
    result,
    *,
    trigger: str,
    started: datetime,
    actor_label: str,
    actor=None,
    remote_addr=None,
    in_use: bool = True,
    audit_rows: list[AuditEvent] | None = None,
    previous: tuple[bool | None, str] | None = None,
    run: HealthCheckRun | None = None,
    health_rows: list[Application] | None = None,
):
    """Store a run; a run of the certificate in use is also the application's health (its last
    check, a notice on a change, the lockout guard), a run of another one is only recorded.
    With ``audit_rows``, the run's audit row is appended there, for the caller to save in the
    same transaction. ``previous``: the application's last run's (ok, code), if read in the caller's
    transaction; ``run``: the run, already inserted by the caller (with others, in one INSERT);
    ``health_rows``: the application is appended there with its new health, for the caller to
    save with others (save_health), instead of saved here."""
    # The run, the application's pointer to it and any notice: one commit (in the caller's, if it has one).
    with transaction.atomic(savepoint=False):
        if previous is None:
            previous = _previous_health([application.pk]).get(application.pk, (None, ""))
        previous_ok, previous_code = previous
        if run is None:
            run = _new_run(application, certificate, result, trigger, started, actor_label)
            run.save()
        if in_use:
            _becomes_health(application, run, previous_code or "", health_rows)
            notify.health_transition(application, run, previous_ok)
        what = (
            "" if in_use else f" with the {certificate.lifecycle} certificate {certificate.fingerprint[:16]}…"
        )
        event = AuditEvent(
            action=AuditEvent.Action.HEALTH_CHECK_RUN,
            actor=actor,
            remote_addr=remote_addr,
            actor_label=actor_label[:200],
            application=application,
            certificate=certificate,
            detail=f"{trigger}{what}: {'healthy' if run.ok else f'failed at {run.failed_step} ({run.code})'}",
        )
        if audit_rows is None:
            event.save()
        else:
            audit_rows.append(event)
    return run


def _new_run(application, certificate, result, trigger, started, actor_label) -> HealthCheckRun:
    failed = result.failed_step
    return HealthCheckRun(
        application=application,
        certificate=certificate,
        trigger=trigger,
        actor_label=actor_label[:200],
        started_at=started,
        duration_ms=sum(step.duration_ms or 0 for step in result.steps),
        ok=result.ok,
        failed_step=failed.name if failed else "",
        code=failed.code if failed else "",
        diagnosis=failed.diagnosis if failed else "",
        steps=[step.to_dict() for step in result.steps],
        claims=result.claims,
    )


def _becomes_health(
    application: Application, run: HealthCheckRun, previous_code: str, health_rows: list[Application] | None
) -> None:
    # IAS locks a client id after 5 failed logins for 60 minutes: two refusals in a row stop the
    # schedule until someone runs the check by hand (a run that is not refused resumes it).
    application.checks_paused = run.locks_out and previous_code in HealthCheckRun.LOCKOUT_CODES
    application.last_check = run
    if health_rows is None:
        save_health([application])
    else:
        health_rows.append(application)


def save_health(applications: list[Application]) -> None:
    """Their last check and pause, as _becomes_health set them: one UPDATE (raw: QuerySet.bulk_update
    builds the same CASE through expressions at ~1 ms a row)."""
    if not applications:
        return
    ops, meta = connection.ops, Application._meta
    table, pk = ops.quote_name(meta.db_table), ops.quote_name(meta.pk.column)
    last, paused = (ops.quote_name(meta.get_field(name).column) for name in ("last_check", "checks_paused"))
    whens = " ".join(["WHEN %s THEN %s"] * len(applications))
    marks = ", ".join(["%s"] * len(applications))
    sql = (
        f"UPDATE {table} SET {last} = CASE {pk} {whens} END, {paused} = CASE {pk} {whens} END "  # noqa: S608
        f"WHERE {pk} IN ({marks})"  # names from the model, values bound
    )
    params = [value for a in applications for value in (a.pk, a.last_check_id)]
    params += [value for a in applications for value in (a.pk, bool(a.checks_paused))]
    params += [application.pk for application in applications]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


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
    by_interval: dict[int, list[Application]] = {}
    for application in applications:
        by_interval.setdefault(application.check_interval_minutes, []).append(application)
    won: set[int] = set()
    for minutes, group in by_interval.items():
        claimed_until = now + timedelta(minutes=minutes)
        taken = _take_due([application.pk for application in group], now, claimed_until)
        for application in group:
            if application.pk in taken:
                application.next_check_at = claimed_until
        won |= taken
    return [application for application in applications if application.pk in won]


def _take_due(pks: list[int], now: datetime, until: datetime) -> set[int]:
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
    with connection.cursor() as cursor:
        cursor.execute(sql, [ops.adapt_datetimefield_value(until), *pks, ops.adapt_datetimefield_value(now)])
        return {row[0] for row in cursor.fetchall()}


# Scheduled checks are claimed a few at a time (one UPDATE, one commit, and one more to store the
# batch's runs, per batch rather than per check); an instance that dies leaves at most this many
# applications claimed and unchecked until their interval ends.
CLAIM_BATCH = 8


def run_due(now: datetime | None = None, slug: str | None = None, workers: int | None = None):
    """Check everything due at ``now`` with up to ``workers`` threads; the stored runs, by slug.

    Each thread claims a few applications (CLAIM_BATCH) right before checking them, so several
    instances share a long list (in shuffled order, to rarely want the same one) instead of the
    first taking it all and leaving it unchecked if it dies.
    """
    now = now or timezone.now()
    workers = max(1, workers or settings.CERTMGR_HEALTHCHECK_WORKERS)
    candidates = list(due(now, slug))
    random.shuffle(candidates)
    queue = iter(candidates)
    lock = threading.Lock()
    # In the pool, small enough for every thread to get several: the threads end at about the same time.
    batch = CLAIM_BATCH if workers == 1 else max(1, min(CLAIM_BATCH, len(candidates) // (4 * workers)))

    def next_applications() -> list[Application]:
        with lock:
            return list(itertools.islice(queue, batch))

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
    so that one cannot take the others with it, and then the claims in one more."""
    try:
        with _one_writer(), transaction.atomic():
            audit_rows: list[AuditEvent] = []
            stored = _store(done, audit_rows)
            checks, unreadable = _claim_and_prepare(applications, now, audit_rows)
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
                run = _store([check], audit_rows)  # kept only once committed
                bulk.insert(AuditEvent, audit_rows)
            stored += run
        except DatabaseError as exc:
            log.warning("health check run of %s not stored: %s", check.application.slug, type(exc).__name__)
    with _one_writer(), transaction.atomic():
        audit_rows = []
        checks, unreadable = _claim_and_prepare(applications, now, audit_rows)
        bulk.insert(AuditEvent, audit_rows)
    return stored, checks, unreadable


def _claim_and_prepare(
    applications: list[Application], now: datetime, audit_rows: list[AuditEvent]
) -> tuple[list[Check], VaultError | None]:
    """In the caller's transaction: the checks of the applications claimed, their keys read (the
    reads' audit rows appended to ``audit_rows``); a key that could not be read."""
    checks: list[Check] = []
    unreadable = None
    claimed = claim_due(applications, now)
    usable = _usable_by_application(claimed)
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


def _store(done: list[Check], audit_rows: list[AuditEvent]) -> list[HealthCheckRun]:
    """In the caller's transaction: the runs of ``done`` and their applications' health; their
    audit rows appended to ``audit_rows``."""
    if not done:
        return []
    health_rows: list[Application] = []
    previous = _previous_health([check.application.pk for check in done])
    inserted = [check.new_run() for check in done]
    bulk.insert_numbered(HealthCheckRun, inserted)
    stored = [
        check.store(audit_rows, previous.get(check.application.pk), run, health_rows)
        for check, run in zip(done, inserted, strict=True)
    ]
    save_health(health_rows)
    return stored


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
