"""Does a certificate's chain reach a CA that IAS trusts for X509_PROVIDED?

SAP's documentation (SAP-docs/btp-cloud-identity-services, "Configure Certificates for API
Authentication", docs/Development/configure-certificates-for-api-authentication-47e9866.md) names the
CAs IAS trusts by default and says another CA is added to a tenant through an SAP incident
(component BC-IAM-IDS, with the root and intermediate certificates attached). The identity service
reference says an X509_PROVIDED certificate comes "from a trusted certificate authority".

How a chain is matched:
- SAP publishes the default CAs by name only, and the portal ships none of their certificates.
  A default CA counts when its name is the common name of an issuer on the uploaded path (the
  issuer of the leaf or of any uploaded CA certificate; an uploaded root is its own issuer). A
  name is no proof: a CA anyone made can carry it. That is acceptable here because IAS itself
  decides; this only predicts its answer for the common case of an upload without the root.
- CAs listed in CERTMGR_IAS_TRUSTED_CAS are certificates, so they are matched by key, not name:
  the chain reaches one when a certificate of the chain *is* that CA certificate, or its
  signature verifies under that CA's key with the issuer name equal to the CA's subject (which
  is stronger than comparing authority and subject key identifiers).
- A self-signed certificate alone is its own CA: no default name makes it trusted, only listing
  it (after the incident) does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from .chain import issued

DEFAULT_TRUSTED_CAS = (
    "SAP Passport CA G2",
    "SAP SSO CA G2",
    "SAP Cloud Root CA",
    "SAP Global Root CA",
    "DigiCert TLS RSA SHA256 2020 CA1",
    "DigiCert Global Root CA",
    "SAP Cloud Platform Client CA",
    "ConnectivityCA",
)
_DEFAULT_BY_NAME = {name.casefold(): name for name in DEFAULT_TRUSTED_CAS}
MAX_TRUSTED_CAS = 1000  # a configured file is a handful of CAs; this bounds the work per check


@dataclass(frozen=True)
class TrustVerdict:
    trusted_by: str  # the CA reached: a default name or a configured CA's subject; "" if none
    configured: bool  # reached through CERTMGR_IAS_TRUSTED_CAS rather than by a default name
    chain_end: str  # RFC 4514 name of the CA the uploaded chain ends at
    self_signed: bool


def load_trusted_cas(data: bytes) -> tuple[x509.Certificate, ...]:
    """The certificates of a PEM file; ValueError with a sentence when it holds none or a bad one."""
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ValueError("holds no PEM certificate")
    try:
        cas = tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        raise ValueError("holds a PEM certificate block that cannot be decoded") from None
    if len(cas) > MAX_TRUSTED_CAS:
        raise ValueError(f"holds {len(cas)} certificates; at most {MAX_TRUSTED_CAS} are read")
    return cas


def judge(chain: Sequence[x509.Certificate], trusted_cas: Sequence[x509.Certificate] = ()) -> TrustVerdict:
    """``chain`` is leaf first, each certificate followed by its issuer (as stored)."""
    leaf, top = chain[0], chain[-1]
    self_signed = len(chain) == 1 and leaf.issuer == leaf.subject
    end = top.issuer.rfc4514_string()
    configured = _configured_ca(chain, trusted_cas)
    if configured is not None:
        return TrustVerdict(configured.subject.rfc4514_string(), True, end, self_signed)
    if not self_signed:
        for cert in chain:
            name = _DEFAULT_BY_NAME.get(_common_name(cert.issuer).casefold())
            if name:
                return TrustVerdict(name, False, end, self_signed)
    return TrustVerdict("", False, end, self_signed)


def _configured_ca(chain: Sequence[x509.Certificate], cas: Sequence[x509.Certificate]):
    by_subject: dict[x509.Name, list[x509.Certificate]] = {}
    for ca in cas:
        by_subject.setdefault(ca.subject, []).append(ca)
    for cert in chain:
        for ca in by_subject.get(cert.issuer, ()):
            if cert == ca or issued(cert, ca):
                return ca
        for ca in by_subject.get(cert.subject, ()):
            if cert == ca:
                return ca
    return None


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = values[-1].value if values else ""
    return " ".join(str(value).split())
