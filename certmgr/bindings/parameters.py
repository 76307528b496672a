"""Binding parameters and pre-flight checks for stored certificates (Django side of core.binding)."""

from __future__ import annotations

import functools
import logging
import os

from cryptography import x509
from django.conf import settings
from django.utils import timezone

from ..core import binding, iastrust
from ..core.parse import ParsedInput
from ..core.preflight import ERROR, Check, preflight
from ..models import Application, Certificate, warning_threshold

log = logging.getLogger(__name__)


def parameters(cert: Certificate, *, chain: bool = False) -> dict:
    """X509_PROVIDED parameters: the leaf, or the leaf and its issuers. Never the key."""
    return binding.x509_provided(cert.chain_certificates() if chain else [cert.pem])


def rendered(
    cert: Certificate, fmt: str, *, chain: bool = False, target: binding.Target | None = None
) -> str:
    return binding.render(parameters(cert, chain=chain), fmt, target or binding.Target())


def trusted_cas() -> tuple[x509.Certificate, ...]:
    """The CAs of CERTMGR_IAS_TRUSTED_CAS (checked at startup: certmgr.checks), read again when it changes."""
    path = settings.CERTMGR_IAS_TRUSTED_CAS
    if not path:
        return ()
    try:
        stat = os.stat(path)
    except OSError as exc:
        log.warning("CERTMGR_IAS_TRUSTED_CAS=%s cannot be read (%s): only IAS's default CAs count", path, exc)
        return ()
    return _load_trusted_cas(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _load_trusted_cas(path: str, mtime_ns: int, size: int) -> tuple[x509.Certificate, ...]:
    try:
        with open(path, "rb") as handle:
            return iastrust.load_trusted_cas(handle.read())
    except (OSError, ValueError) as exc:
        log.warning("CERTMGR_IAS_TRUSTED_CAS=%s: %s; only IAS's default CAs count", path, exc)
        return ()


def _chain(cert: Certificate) -> list[x509.Certificate]:
    try:
        return [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in cert.chain_certificates()]
    except ValueError:
        return []


def checks(cert: Certificate, now=None) -> list[Check]:
    return _checks(cert.application, cert, _chain(cert), exclude_pk=cert.pk, now=now)


def preview_checks(app: Application, parsed: ParsedInput, now=None) -> list[Check]:
    """The checks of an upload not yet stored, against ``app`` (the upload preview shows them)."""
    try:
        chain = [x509.load_pem_x509_certificate(c.pem.encode("ascii")) for c in parsed.chain]
    except ValueError:
        chain = []
    return _checks(app, parsed.leaf, chain, exclude_pk=None, now=now)


def blocking_checks(cert: Certificate, now=None) -> list[Check]:
    """The pre-flight results that stop the parameters from leaving the portal: IAS would refuse them.

    The one gate in front of every way parameters leave: while this is not empty, the
    certificate page's Copy and Download (and the rotation steps) need "use anyway",
    binding_params exits 3 unless --force, and the API answers 409 unless ?force=true.
    """
    return blocking(checks(cert, now))


def blocking(found: list[Check]) -> list[Check]:
    """Of checks already made (``checks(cert)``), those that block: the errors."""
    return [check for check in found if check.level == ERROR]


def _checks(app: Application, facts, chain, *, exclude_pk: int | None, now) -> list[Check]:
    """``facts``: a stored Certificate or core.facts.CertificateFacts (fingerprint in .sha256)."""
    fingerprint = getattr(facts, "fingerprint", None) or facts.sha256
    others = app.certificates.exclude(lifecycle=Certificate.Lifecycle.RETIRED).exclude(
        fingerprint=fingerprint
    )
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    holder = None
    if app.tenant:
        clash = (
            Certificate.objects.filter(tenant=app.tenant, fingerprint=fingerprint)
            .exclude(application=app)
            .select_related("application")
            .first()
        )
        holder = clash.application.name if clash else None
    active = others.filter(lifecycle=Certificate.Lifecycle.ACTIVE).order_by("-not_after").first()
    return preflight(
        facts,
        now=now or timezone.now(),
        threshold=warning_threshold(),
        tenant_holder=holder,
        subject_dns=frozenset(others.values_list("subject", flat=True)),
        active_subject=active.subject if active else None,
        chain=chain,
        trusted_cas=trusted_cas(),
        disabled=settings.CERTMGR_PREFLIGHT_DISABLE,
    )


def find(reference: str, within=None) -> Certificate | None:
    """A certificate by primary key or by (a unique prefix of) its SHA-256 fingerprint, among all
    or among ``within`` (e.g. an application's certificates)."""
    rows = Certificate.objects.all() if within is None else within
    if reference.isascii() and reference.isdigit() and len(reference) < 16:  # not "²": int() refuses it
        found = rows.filter(pk=int(reference)).first()
        if found:
            return found
    compact = reference.replace(":", "").lower()
    if len(compact) < 8:
        return None
    matches = list(rows.filter(fingerprint__startswith=compact)[:2])
    return matches[0] if len(matches) == 1 else None
