"""Rotating an application to its staged certificate: the overlap, the steps, the switch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from ..models import Application, AuditEvent, Certificate


@dataclass(frozen=True)
class RotationPlan:
    staged: Certificate
    current: Certificate | None
    overlap_start: datetime | None
    overlap_end: datetime | None

    @property
    def has_overlap(self) -> bool:
        return self.overlap_start is not None and self.overlap_start < self.overlap_end


def plan(app: Application) -> RotationPlan | None:
    """The newest staged certificate against the active one expiring last, or None."""
    certs = app.certificates
    staged = certs.filter(lifecycle=Certificate.Lifecycle.STAGED).order_by("-uploaded_at", "-pk").first()
    if staged is None:
        return None
    current = certs.filter(lifecycle=Certificate.Lifecycle.ACTIVE).order_by("-not_after").first()
    if current is None:
        return RotationPlan(staged, None, None, None)
    start = max(staged.not_before, current.not_before)
    end = min(staged.not_after, current.not_after)
    return RotationPlan(staged, current, start if start < end else None, end if start < end else None)


@transaction.atomic
def promote(staged: Certificate, *, actor, remote_addr=None) -> list[Certificate]:
    """Make ``staged`` active and retire the application's other active certificates."""
    app = Application.objects.select_for_update().get(pk=staged.application_id)
    retired = list(app.certificates.filter(lifecycle=Certificate.Lifecycle.ACTIVE).exclude(pk=staged.pk))
    app.certificates.filter(pk__in=[c.pk for c in retired]).update(lifecycle=Certificate.Lifecycle.RETIRED)
    app.certificates.filter(pk=staged.pk).update(lifecycle=Certificate.Lifecycle.ACTIVE)
    events = [(staged, "promoted: staged → active")] + [(c, "retired by rotation") for c in retired]
    AuditEvent.objects.bulk_create(
        AuditEvent(actor=actor, actor_label=actor.get_username(), action=AuditEvent.Action.CERTIFICATE_CHANGED,
                   application=app, certificate=cert, remote_addr=remote_addr, detail=detail)
        for cert, detail in events
    )  # fmt: skip
    return retired
