"""Checks a certificate must pass before IAS will take it as X509_PROVIDED (domain.md).

Three rules are not in SAP's documentation (the 24 h replication of a changed subject DN, a minimum
RSA size, the clientAuth extended key usage for provided certificates): they are warnings whose
message says "(not documented by SAP)", and each can be switched off (SWITCHES).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from . import iastrust
from .expiry import days_left

PASS, WARNING, ERROR = "pass", "warning", "error"
MAX_SUBJECT_DNS = 20  # distinct certificate subject DNs per IAS application
UNDOCUMENTED = " (not documented by SAP)"
# CERTMGR_PREFLIGHT_DISABLE names → the rule each one switches off.
SWITCHES = {"dn_change": "subject_dn_change", "rsa_min": "key_strength", "client_auth": "client_auth"}
INCIDENT = "an SAP incident (component BC-IAM-IDS, with the root and intermediate certificates attached)"


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
    chain: Sequence[x509.Certificate] = (),
    trusted_cas: Sequence[x509.Certificate] = (),
    disabled: Iterable[str] = (),
) -> list[Check]:
    """``cert`` has the facts of core.facts.CertificateFacts (or a stored Certificate).

    ``tenant_holder`` names another application of the tenant that already uses the certificate;
    ``subject_dns`` are the subject DNs of the application's other certificates;
    ``active_subject`` is the subject DN of the certificate the application uses now;
    ``chain`` is the certificate and its stored issuers, leaf first (default: ``cert.pem`` alone);
    ``trusted_cas`` are CAs added to the tenant beyond IAS's defaults (CERTMGR_IAS_TRUSTED_CAS);
    ``disabled`` names switched-off rules (keys of SWITCHES, CERTMGR_PREFLIGHT_DISABLE).
    """
    off = {SWITCHES[name] for name in disabled if name in SWITCHES}
    checks = [
        _validity(cert, now),
        _expiry(cert, now, threshold),
        _tenant(tenant_holder),
        _subject_limit(cert, subject_dns),
        _subject_change(cert, active_subject),
        _key_strength(cert),
        _client_auth(cert),
        _trusted_ca(chain or _alone(cert), trusted_cas),
    ]
    return [check for check in checks if check.rule not in off]


def _alone(cert) -> list[x509.Certificate]:
    try:
        return [x509.load_pem_x509_certificate(cert.pem.encode("ascii"))]
    except ValueError:
        return []


def unknown_switches(names: Iterable[str]) -> list[str]:
    return [name for name in names if name not in SWITCHES]


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
            "The subject DN differs from the active certificate's: IAS may take up to 24 h to replicate it"
            + UNDOCUMENTED
            + ".",
        )
    return Check("subject_dn_change", PASS, "Same subject DN as the active certificate (or none active).")


def _key_strength(cert) -> Check:
    if cert.key_algorithm == "RSA" and cert.key_size < 2048:
        message = f"RSA {cert.key_size} bits: IAS may refuse keys under 2048 bits{UNDOCUMENTED}."
        return Check("key_strength", WARNING, message)
    return Check("key_strength", PASS, f"{cert.key_algorithm} {cert.key_size} bits.")


def _client_auth(cert) -> Check:
    usages = list(cert.extended_key_usage)
    if usages and "clientAuth" not in usages:
        message = f"Extended key usage {', '.join(usages)} lacks clientAuth: IAS may refuse it{UNDOCUMENTED}."
        return Check("client_auth", WARNING, message)
    return Check("client_auth", PASS, "Usable for client authentication.")


def _trusted_ca(chain: Sequence[x509.Certificate], trusted_cas: Sequence[x509.Certificate]) -> Check:
    # A warning, not an error, although SAP's docs say the certificate must come from a trusted
    # CA: a tenant may trust CAs added by incident that this portal was not told about.
    if not chain:
        return Check("trusted_ca", WARNING, "The certificate cannot be decoded to look at its issuer.")
    verdict = iastrust.judge(chain, trusted_cas)
    if verdict.configured:
        return Check(
            "trusted_ca", PASS, f"Issued under {verdict.trusted_by}, a CA added to the tenant's trust."
        )
    if verdict.trusted_by:
        return Check("trusted_ca", PASS, f"Issued under {verdict.trusted_by}, a CA IAS trusts by default.")
    if verdict.self_signed:
        return Check(
            "trusted_ca",
            WARNING,
            f"Self-signed: IAS refuses it unless it was added to the tenant as a trusted CA through {INCIDENT}.",
        )
    return Check(
        "trusted_ca",
        WARNING,
        f"The chain ends at '{verdict.chain_end}', not a CA IAS trusts by default: IAS refuses the "
        f"certificate unless that CA was added to the tenant through {INCIDENT}.",
    )
