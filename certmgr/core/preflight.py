"""Checks a certificate must pass before IAS will take it as X509_PROVIDED (domain.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .expiry import days_left

PASS, WARNING, ERROR = "pass", "warning", "error"
MAX_SUBJECT_DNS = 20  # distinct certificate subject DNs per IAS application


@dataclass(frozen=True)
class Check:
    rule: str
    level: str
    message: str


def preflight(
    cert,
    *,
    now: datetime,
    threshold: timedelta,
    tenant_holder: str | None = None,
    subject_dns: frozenset[str] = frozenset(),
    active_subject: str | None = None,
) -> list[Check]:
    """``cert`` has the facts of core.facts.CertificateFacts (or a stored Certificate).

    ``tenant_holder`` names another application of the tenant that already uses the certificate;
    ``subject_dns`` are the subject DNs of the application's other certificates;
    ``active_subject`` is the subject DN of the certificate the application uses now.
    """
    return [
        _validity(cert, now),
        _expiry(cert, now, threshold),
        _tenant(tenant_holder),
        _subject_limit(cert, subject_dns),
        _subject_change(cert, active_subject),
        _key_strength(cert),
        _client_auth(cert),
        _self_signed(cert),
    ]


def _validity(cert, now: datetime) -> Check:
    if now > cert.not_after:
        return Check("validity", ERROR, f"Expired on {cert.not_after:%Y-%m-%d %H:%M} UTC.")
    if now < cert.not_before:
        return Check("validity", ERROR, f"Not valid before {cert.not_before:%Y-%m-%d %H:%M} UTC.")
    return Check("validity", PASS, "Valid now.")


def _expiry(cert, now: datetime, threshold: timedelta) -> Check:
    left = days_left(cert.not_after, now)
    if cert.not_after - now <= threshold and now <= cert.not_after:
        return Check("expiry", WARNING, f"Expires in {left} days: plan the next rotation now.")
    return Check("expiry", PASS, f"{max(left, 0)} days left.")


def _tenant(holder: str | None) -> Check:
    if holder:
        return Check(
            "tenant_unique",
            ERROR,
            f"Already used by application '{holder}' in this IAS tenant: IAS rejects it.",
        )
    return Check("tenant_unique", PASS, "Not used by another application of this tenant.")


def _subject_limit(cert, subject_dns: frozenset[str]) -> Check:
    count = len(subject_dns | {cert.subject})
    if count > MAX_SUBJECT_DNS:
        return Check(
            "subject_dn_limit",
            ERROR,
            f"{count} distinct subject DNs: IAS allows {MAX_SUBJECT_DNS} per application.",
        )
    return Check("subject_dn_limit", PASS, f"{count} of {MAX_SUBJECT_DNS} distinct subject DNs.")


def _subject_change(cert, active_subject: str | None) -> Check:
    if active_subject and active_subject != cert.subject:
        return Check(
            "subject_dn_change",
            WARNING,
            "The subject DN differs from the active certificate's: IAS may take up to 24 h to replicate it.",
        )
    return Check("subject_dn_change", PASS, "Same subject DN as the active certificate (or none active).")


def _key_strength(cert) -> Check:
    if cert.key_algorithm == "RSA" and cert.key_size < 2048:
        return Check("key_strength", ERROR, f"RSA {cert.key_size} bits: IAS needs at least 2048.")
    return Check("key_strength", PASS, f"{cert.key_algorithm} {cert.key_size} bits.")


def _client_auth(cert) -> Check:
    usages = list(cert.extended_key_usage)
    if usages and "clientAuth" not in usages:
        return Check("client_auth", WARNING, f"Extended key usage {', '.join(usages)} lacks clientAuth.")
    return Check("client_auth", PASS, "Usable for client authentication.")


def _self_signed(cert) -> Check:
    if cert.self_issued:
        return Check("self_signed", WARNING, "Self-signed: IAS must be told to trust it explicitly.")
    return Check("self_signed", PASS, f"Issued by {cert.issuer}.")
