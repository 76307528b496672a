"""The token-flow health check as the portal runs it: the Django shell around core.tokenflow.

A check reads the application's active key (audited), runs the flow, and stores the run
without the token. Scheduled checks are claimed with a conditional UPDATE on next_check_at, so
any number of processes can run them and each due application is checked once per interval.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from . import notify
from .core.outbound import DEFAULT_TENANT_HOSTS, HttpPolicy
from .core.tokenflow import StepResult, TokenFlow, TokenFlowOptions, TokenFlowRequest
from .keys import read_private_key
from .models import Application, AuditEvent, Certificate, HealthCheckRun

log = logging.getLogger(__name__)

IAS_DOMAINS = ("accounts.ondemand.com", "accounts.cloud.sap", "accounts400.ondemand.com")


class NotCheckable(Exception):
    pass


def http_policy() -> HttpPolicy:
    return HttpPolicy(
        tenant_hosts=DEFAULT_TENANT_HOSTS + tuple(settings.CERTMGR_TENANT_HOSTS),
        ca_bundle=settings.CERTMGR_CA_BUNDLE or None,
        allow_http_loopback=settings.CERTMGR_ALLOW_HTTP_LOOPBACK,
        connect_timeout=settings.CERTMGR_HEALTHCHECK_CONNECT_TIMEOUT,
        read_timeout=settings.CERTMGR_HEALTHCHECK_READ_TIMEOUT,
        outbound_allow=tuple(settings.CERTMGR_OUTBOUND_ALLOW),
        allow_loopback=settings.DEBUG,
    )


def certificate_to_check(application: Application) -> Certificate | None:
    """The active certificate with a stored key that lasts longest: what the application uses."""
    # Picked in Python: an ORDER BY not_after lets the database walk the not_after index of every
    # certificate instead of the few of this application.
    usable = application.certificates.active().filter(encrypted_private_key__isnull=False)
    return max(usable, key=lambda certificate: (certificate.not_after, certificate.pk), default=None)


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
    """The binding's domains; without them IAS's own, plus the tenant host (custom domain, stand-in)."""
    if application.domains:
        return tuple(str(domain) for domain in application.domains)
    return (*IAS_DOMAINS, urlsplit(application.tenant_url).hostname or "")


class Check:
    """Iterate for the steps as they complete; ``run`` holds the stored HealthCheckRun afterwards."""

    def __init__(
        self, application: Application, *, trigger: str, actor=None, actor_label: str, remote_addr=None
    ):
        self.application, self.trigger = application, trigger
        self.actor, self.actor_label, self.remote_addr = actor, actor_label, remote_addr
        self.run: HealthCheckRun | None = None

    def __iter__(self) -> Iterator[StepResult]:
        application = self.application
        certificate = certificate_to_check(application)
        reason = why_not_checkable(application, [certificate] if certificate else [])
        if reason:
            raise NotCheckable(reason)
        started = timezone.now()
        flow = TokenFlow(self._request(certificate), TokenFlowOptions(policy=http_policy()))
        yield from flow
        self.run = record(
            application,
            certificate,
            flow.result,
            trigger=self.trigger,
            started=started,
            actor_label=self.actor_label,
            actor=self.actor,
            remote_addr=self.remote_addr,
        )

    def _request(self, certificate: Certificate) -> TokenFlowRequest:
        application = self.application
        key_der = read_private_key(
            certificate,
            actor=self.actor,
            actor_label=self.actor_label,
            remote_addr=self.remote_addr,
            purpose=f"token-flow health check ({self.trigger})",
        )
        return TokenFlowRequest(
            tenant_url=application.tenant_url,
            client_id=application.client_id,
            certificate_pem=(certificate.chain_pem or certificate.pem).encode("ascii"),  # leaf first
            key_der=key_der,
            trusted_domains=trusted_domains(application),
            backend_url=application.backend_url,
            backend_mtls=application.backend_mtls,
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
):
    previous_ok, previous_code = application.health_checks.values_list("ok", "code").first() or (None, "")
    with transaction.atomic():  # the run, the application's pointer to it and any notice: one commit
        run = _store_run(application, certificate, result, trigger, started, actor_label, previous_code)
        notify.health_transition(application, run, previous_ok)
        AuditEvent.objects.create(
            action=AuditEvent.Action.HEALTH_CHECK_RUN,
            actor=actor,
            remote_addr=remote_addr,
            actor_label=actor_label[:200],
            application=application,
            certificate=certificate,
            detail=f"{trigger}: {'healthy' if run.ok else f'failed at {run.failed_step} ({run.code})'}",
        )
    return run


def _store_run(application, certificate, result, trigger, started, actor_label, previous_code):
    failed = result.failed_step
    run = HealthCheckRun.objects.create(
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
    # IAS locks a client id after 5 failed logins for 60 minutes: two refusals in a row stop the
    # schedule until someone runs the check by hand (a run that is not refused resumes it).
    application.checks_paused = run.locks_out and previous_code in HealthCheckRun.LOCKOUT_CODES
    application.last_check = run
    Application.objects.filter(pk=application.pk).update(
        checks_paused=application.checks_paused, last_check=run
    )
    return run


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
    claimed_until = now + timedelta(minutes=application.check_interval_minutes)
    won = Application.objects.filter(pk=application.pk, next_check_at=application.next_check_at).update(
        next_check_at=claimed_until
    )
    if won:
        application.next_check_at = claimed_until
    return bool(won)


def run_due(now: datetime | None = None, slug: str | None = None, workers: int | None = None):
    """Check everything due at ``now`` with up to ``workers`` threads; the stored runs, by slug.

    Each application is claimed right before its check, so several instances share a long list
    (in shuffled order, to rarely want the same one) instead of the first taking it all and
    leaving it unchecked if it dies.
    """
    now = now or timezone.now()
    workers = max(1, workers or settings.CERTMGR_HEALTHCHECK_WORKERS)
    candidates = list(due(now, slug))
    random.shuffle(candidates)
    queue = iter(candidates)
    lock = threading.Lock()

    def drain() -> list[HealthCheckRun]:
        runs = []
        while True:
            with lock:
                application = next(queue, None)
            if application is None:
                return runs
            if claim(application, now) and (run := _scheduled(application)) is not None:
                runs.append(run)

    # An in-memory SQLite database (the test suite's) is one connection: no threads there.
    if workers == 1 or len(candidates) < 2 or getattr(connection, "is_in_memory_db", lambda: False)():
        runs = drain()
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="healthcheck") as pool:
            batches = [pool.submit(_in_thread, drain) for _ in range(min(workers, len(candidates)))]
            runs = [run for batch in batches for run in batch.result()]
    return sorted(runs, key=lambda run: run.application.slug)


def _scheduled(application: Application) -> HealthCheckRun | None:
    try:
        return run_check(
            application, trigger=HealthCheckRun.Trigger.SCHEDULED, actor_label="scheduled health check"
        )
    except NotCheckable as exc:  # the certificate went away between claim and check
        log.info("health check of %s skipped: %s", application.slug, exc)
        return None


def _in_thread(work):
    close_old_connections()
    try:
        return work()
    finally:
        connection.close()
