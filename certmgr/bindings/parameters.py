"""Binding parameters and pre-flight checks for stored certificates (Django side of core.binding)."""

from __future__ import annotations

from django.utils import timezone

from ..core import binding
from ..core.preflight import Check, preflight
from ..models import Certificate, warning_threshold


def parameters(cert: Certificate, *, chain: bool = False) -> dict:
    """X509_PROVIDED parameters: the leaf, or the leaf and its issuers. Never the key."""
    return binding.x509_provided(cert.chain_certificates() if chain else [cert.pem])


def rendered(
    cert: Certificate, fmt: str, *, chain: bool = False, target: binding.Target | None = None
) -> str:
    return binding.render(parameters(cert, chain=chain), fmt, target or binding.Target())


def checks(cert: Certificate, now=None) -> list[Check]:
    app = cert.application
    others = app.certificates.exclude(pk=cert.pk).exclude(lifecycle=Certificate.Lifecycle.RETIRED)
    holder = None
    if cert.tenant:
        clash = (
            Certificate.objects.filter(tenant=cert.tenant, fingerprint=cert.fingerprint)
            .exclude(application=app)
            .select_related("application")
            .first()
        )
        holder = clash.application.name if clash else None
    active = others.filter(lifecycle=Certificate.Lifecycle.ACTIVE).order_by("-not_after").first()
    return preflight(
        cert,
        now=now or timezone.now(),
        threshold=warning_threshold(),
        tenant_holder=holder,
        subject_dns=frozenset(others.values_list("subject", flat=True)),
        active_subject=active.subject if active else None,
    )


def find(reference: str) -> Certificate | None:
    """A certificate by primary key or by (a unique prefix of) its SHA-256 fingerprint."""
    if reference.isascii() and reference.isdigit() and len(reference) < 16:  # not "²": int() refuses it
        found = Certificate.objects.filter(pk=int(reference)).first()
        if found:
            return found
    compact = reference.replace(":", "").lower()
    if len(compact) < 8:
        return None
    matches = list(Certificate.objects.filter(fingerprint__startswith=compact)[:2])
    return matches[0] if len(matches) == 1 else None
