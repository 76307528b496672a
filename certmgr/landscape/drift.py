"""Drift: where what a Cloud Foundry binding holds differs from what the portal says is in use.

Red when a binding holds a retired, an expired or an unknown certificate, or one that expires
within the warning window while a later-expiring one is active in the portal (the rotation has
not reached this binding). A portal certificate that no binding holds is "not deployed".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.utils import timezone

from ..core.expiry import days_left
from ..models import Application, Certificate, warning_threshold
from .models import Binding, DiscoveredApplication, Foundry

RED = ("retired", "expired", "unknown", "superseded")
DASHBOARD_ROWS = 50
_BADGE = {"in_use": "valid", "expiring": "expiring", "staged": "not_yet_valid"}
_LABEL = {"in_use": "in use", "superseded": "not rotated", "no_certificate": "no certificate"}


@dataclass(frozen=True)
class BindingState:
    binding: Binding
    verdict: str  # in_use | expiring | staged | retired | expired | unknown | superseded | no_certificate | unreadable
    says: str

    @property
    def red(self) -> bool:
        return self.verdict in RED

    @property
    def badge(self) -> str:
        """The badge class of the portal's stylesheet: red, amber, green or neutral."""
        return "expired" if self.red else _BADGE.get(self.verdict, "none")

    @property
    def label(self) -> str:
        return _LABEL.get(self.verdict, self.verdict)


def judge(binding: Binding, now: datetime, newest_active: datetime | None) -> BindingState:
    """What the binding holds, measured against the portal. ``newest_active``: the latest expiry of
    an active certificate in the application its certificate belongs to."""
    certificate = binding.certificate
    if not binding.credential_type:
        return BindingState(binding, "unreadable", binding.problem or "Its credentials could not be read.")
    if not binding.fingerprint and binding.problem:  # a certificate was there, but not readable
        return BindingState(binding, "unknown", binding.problem)
    if not binding.fingerprint:
        kind = binding.credential_type
        return BindingState(binding, "no_certificate", f"No certificate: credential type {kind}.")
    if certificate is None:
        why = f" ({binding.problem})" if binding.problem else ""
        return BindingState(binding, "unknown", f"Holds a certificate the portal does not have{why}.")
    left = days_left(certificate.not_after, now)
    if certificate.lifecycle == Certificate.Lifecycle.RETIRED:
        return BindingState(binding, "retired", "Still holds a retired certificate: rotate this binding.")
    if certificate.not_after < now:
        return BindingState(binding, "expired", f"Holds a certificate that expired {-left} days ago.")
    expiring = certificate.not_after <= now + warning_threshold()
    if expiring and newest_active is not None and newest_active > certificate.not_after:
        says = (
            f"Expires in {left} days while a newer certificate is active in the portal: rotate this binding."
        )
        return BindingState(binding, "superseded", says)
    if certificate.lifecycle == Certificate.Lifecycle.STAGED:
        return BindingState(
            binding, "staged", "Holds the staged certificate: promote it once every binding has it."
        )
    if expiring:
        return BindingState(binding, "expiring", f"Holds the active certificate; it expires in {left} days.")
    return BindingState(binding, "in_use", "Holds the active certificate.")


@dataclass
class ApplicationDrift:
    states: list[BindingState]
    deployment: list[
        tuple[Certificate, int]
    ]  # active and staged certificates, and how many bindings hold each
    discovery: DiscoveredApplication | None = None

    @property
    def red(self) -> int:
        return sum(1 for state in self.states if state.red)


def application_drift(
    app: Application, certificates: list[Certificate] | None = None, now: datetime | None = None
) -> ApplicationDrift | None:
    """The application's bindings and their verdicts; None when no binding of it was found (and,
    without a query, while no Cloud Foundry API is configured)."""
    if not settings.CERTMGR_CF_API:
        return None
    now = now or timezone.now()
    bindings = list(app.cf_bindings.select_related("certificate", "foundry"))
    if not bindings:
        return None
    if certificates is None:
        certificates = list(app.certificates.all())
    active = [c.not_after for c in certificates if c.lifecycle == Certificate.Lifecycle.ACTIVE]
    newest = max(active, default=None)
    held: dict[int, int] = {}
    for binding in bindings:
        held[binding.certificate_id] = held.get(binding.certificate_id, 0) + 1
    in_portal = [c for c in certificates if c.lifecycle != Certificate.Lifecycle.RETIRED]
    return ApplicationDrift(
        states=[
            judge(b, now, newest if b.certificate and b.certificate.application_id == app.pk else None)
            for b in bindings
        ],
        deployment=[(c, held.get(c.pk, 0)) for c in sorted(in_portal, key=lambda c: c.not_after)],
        discovery=DiscoveredApplication.objects.filter(application=app).first(),
    )


@dataclass
class LandscapeDrift:
    foundries: list[Foundry]
    total: int
    states: list[BindingState] = field(default_factory=list)  # the red ones, at most DASHBOARD_ROWS
    more: bool = False


def landscape_drift(now: datetime | None = None) -> LandscapeDrift | None:
    """For the dashboard: the foundations, how many bindings, and those in drift. Three queries;
    none at all while no Cloud Foundry API is configured."""
    if not settings.CERTMGR_CF_API:
        return None
    now = now or timezone.now()
    foundries = list(Foundry.objects.all())
    total = Binding.objects.aggregate(total=Count("pk"))["total"]
    newest = Subquery(
        Certificate.objects.active()
        .filter(application_id=OuterRef("certificate__application_id"))
        .order_by("-not_after")
        .values("not_after")[:1]
    )
    suspects = (
        Binding.objects.exclude(fingerprint="", problem="")
        .exclude(credential_type="")
        .annotate(newest_active=newest)
        .filter(
            Q(certificate__isnull=True)
            | Q(certificate__lifecycle=Certificate.Lifecycle.RETIRED)
            | Q(certificate__not_after__lt=now)
            | Q(
                certificate__not_after__lte=now + warning_threshold(),
                newest_active__gt=F("certificate__not_after"),
            )
        )
        .select_related("certificate", "application")
        .order_by("org", "space", "instance_name", "kind", "name", "app_name")[: DASHBOARD_ROWS + 1]
    )
    states = [state for b in suspects if (state := judge(b, now, b.newest_active)).red]
    return LandscapeDrift(foundries, total, states[:DASHBOARD_ROWS], len(states) > DASHBOARD_ROWS)
