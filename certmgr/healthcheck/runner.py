"""The token-flow health check as the portal runs it: the Django shell around core.tokenflow.

A check reads the application's active key (audited), runs the flow, and stores the run
without the token. The schedule, which runs many of them, is in schedule.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..core.tokenflow import StepResult, TokenFlow, TokenFlowOptions, TokenFlowRequest, TokenFlowResult
from ..inventory.keys import read_private_key
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


def previous_health(application_ids: list[int]) -> dict[int, tuple[bool | None, str]]:
    """record's ``previous`` for several applications, in one query."""
    return health_by_application(previous_health_query(application_ids))


def previous_health_query(application_ids: list[int]):
    """The rows of previous_health: (pk, ok, code) of each application's last run."""
    rows = Application.objects.filter(pk__in=application_ids).order_by()  # any order
    return rows.values_list("pk", "last_check__ok", "last_check__code")


def health_by_application(rows) -> dict[int, tuple[bool | None, str]]:
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
            previous = previous_health([application.pk]).get(application.pk, (None, ""))
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
    """Their last check and pause, as _becomes_health set them: one UPDATE."""
    bulk.update_each(Application, applications, ["last_check", "checks_paused"])
