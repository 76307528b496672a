"""Rotating an application to one of its staged certificates: the candidates and their latest
checks, the overlap, the steps, the switch, and the application's health after it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from ..bindings import parameters as bindings
from ..core import rotation_steps
from ..core.rotation_steps import NewCertificate, Rotation
from ..healthcheck import runner, schedule
from ..models import Application, AuditEvent, Certificate, HealthCheckRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """A certificate in the comparison, with the latest run of the health check that used it."""

    certificate: Certificate
    latest_run: HealthCheckRun | None
    overlap_start: datetime | None = None
    overlap_end: datetime | None = None

    @property
    def has_overlap(self) -> bool:
        return self.overlap_start is not None


@dataclass(frozen=True)
class RotationPlan:
    current: Candidate | None  # the active certificate the application uses
    candidates: tuple[Candidate, ...]  # the staged ones, newest first
    chosen: Candidate  # the one the steps are for

    @property
    def staged(self) -> Certificate:
        return self.chosen.certificate

    @property
    def columns(self) -> list[tuple[str, Candidate, bool]]:
        """(heading, candidate, staged?) for the side-by-side comparison, the one in use first."""
        many = len(self.candidates) > 1
        staged = [(f"Staged ({n})" if many else "Staged", c, True) for n, c in enumerate(self.candidates, 1)]
        return ([("In use now", self.current, False)] if self.current else []) + staged


def _overlap(new: Certificate, current: Certificate | None) -> tuple[datetime | None, datetime | None]:
    if current is None:
        return None, None
    start, end = max(new.not_before, current.not_before), min(new.not_after, current.not_after)
    return (start, end) if start < end else (None, None)


def in_use(app: Application) -> Certificate | None:
    """What the application uses: the health check's pick (the active one with a key that lasts
    longest, runner.certificate_to_check), else the active one that lasts longest."""
    active = list(app.certificates.active())
    with_key = [c for c in active if c.has_private_key]
    return max(with_key or active, key=lambda c: (c.not_after, c.pk), default=None)


def plan(app: Application, chosen_pk: int | None = None) -> RotationPlan | None:
    """The staged candidates against the certificate in use, or None when nothing is staged."""
    staged = list(
        app.certificates.filter(lifecycle=Certificate.Lifecycle.STAGED).order_by("-uploaded_at", "-pk")
    )
    if not staged:
        return None
    current = in_use(app)
    runs = _latest_runs(app, [*staged, *([current] if current else [])])
    candidates = tuple(Candidate(c, runs.get(c.pk), *_overlap(c, current)) for c in staged)
    chosen = next((c for c in candidates if c.certificate.pk == chosen_pk), candidates[0])
    return RotationPlan(Candidate(current, runs.get(current.pk)) if current else None, candidates, chosen)


def _latest_runs(app: Application, certificates: list[Certificate]) -> dict[int, HealthCheckRun]:
    latest = (
        HealthCheckRun.objects.filter(certificate=OuterRef("pk"))
        .order_by("-started_at", "-pk")
        .values("pk")[:1]
    )
    run_ids = (
        app.certificates.filter(pk__in=[c.pk for c in certificates])
        .annotate(run=Subquery(latest))
        .values_list("pk", "run")
    )
    wanted = {run: cert for cert, run in run_ids if run is not None}
    return {wanted[run.pk]: run for run in HealthCheckRun.objects.filter(pk__in=wanted)}


def steps_for(app: Application, certificate: Certificate | None, tool: str) -> Rotation:
    """The steps of ``tool`` to rotate to ``certificate`` (None: a certificate still to come)."""
    if certificate is None:
        new = NewCertificate()
    else:
        new = NewCertificate(certificate.fingerprint, bindings.parameters(certificate))
    return rotation_steps.rotation_steps(tool, app.deploy_names(), new)


@transaction.atomic
def promote(staged: Certificate, *, actor, remote_addr=None) -> list[Certificate]:
    """Make ``staged`` active, retire the application's other active certificates, name the new
    key and ServiceBinding as the ones in use, and forget the old certificate's health."""
    app = Application.objects.select_for_update().get(pk=staged.application_id)
    retired = list(app.certificates.filter(lifecycle=Certificate.Lifecycle.ACTIVE).exclude(pk=staged.pk))
    app.certificates.filter(pk__in=[c.pk for c in retired]).update(lifecycle=Certificate.Lifecycle.RETIRED)
    app.certificates.filter(pk=staged.pk).update(lifecycle=Certificate.Lifecycle.ACTIVE)
    names = app.deploy_names()
    new_key = rotation_steps.new_name(names.key, staged.fingerprint, limit=100)
    new_binding = rotation_steps.new_name(names.binding, staged.fingerprint)
    Application.objects.filter(pk=app.pk).update(cf_binding_name=new_key, kyma_binding_name=new_binding)
    forget_health(app)
    changed = AuditEvent.Action.CERTIFICATE_CHANGED
    events = [
        (changed, staged, "promoted: staged → active"),
        *((changed, c, "retired by rotation") for c in retired),
        (
            AuditEvent.Action.APPLICATION_CHANGED,
            None,
            f"in use after the rotation: service key {names.key} → {new_key}, "
            f"ServiceBinding {names.binding} → {new_binding}",
        ),
    ]
    AuditEvent.objects.bulk_create(
        AuditEvent(actor=actor, actor_label=actor.get_username(), action=action, application=app,
                   certificate=cert, remote_addr=remote_addr, detail=detail)
        for action, cert, detail in events
    )  # fmt: skip
    return retired


def forget_health(app: Application, now: datetime | None = None) -> None:
    """The application uses another certificate now: its health is unknown until a run of that one
    exists ("not checked with the new certificate yet"), and a check is due at once. The pause
    after refusals belonged to the old certificate."""
    now = now or timezone.now()
    Application.objects.filter(pk=app.pk).update(last_check=None, checks_paused=False, next_check_at=now)
    app.last_check, app.checks_paused, app.next_check_at = None, False, now


def health_follows_certificate(app: Application) -> bool:
    """After a lifecycle change: if the certificate in use is no longer the one the last check used,
    forget that check (see forget_health). True when it did."""
    last = (
        HealthCheckRun.objects.filter(pk=app.last_check_id).values_list("certificate_id", flat=True).first()
    )
    using = runner.certificate_to_check(app)
    if app.last_check_id is None or last == (using.pk if using else None):
        return False
    forget_health(app)
    return True


def check_now(app: Application, *, actor, remote_addr=None) -> HealthCheckRun | None:
    """Run the due check of the certificate now in use, if no worker has claimed it first: the
    same conditional UPDATE as the schedule, so it runs once. None if a worker has it or the
    certificate cannot be checked (no key); the worker then takes it at its next round."""
    app.refresh_from_db()
    now = timezone.now()
    due = app.next_check_at is None or app.next_check_at <= now  # else a worker has claimed it already
    if not due or runner.why_not_checkable(app) or not schedule.claim(app, now):
        return None
    try:
        return runner.run_check(
            app,
            trigger=HealthCheckRun.Trigger.MANUAL,
            actor=actor,
            actor_label=f"{actor.get_username()} (after promotion)",
            remote_addr=remote_addr,
        )
    except runner.NotCheckable as exc:  # the certificate changed between claim and check
        log.info("check after promotion of %s skipped: %s", app.slug, exc)
        return None
