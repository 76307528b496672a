"""A new key pair and its certificate signing request (PKCS#10), as plain data.

The subject is an RFC 4514 string (as the portal shows subjects). Keeping the active
certificate's subject DN avoids IAS's replication delay for a changed DN (domain.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .facts import spki_der

KEY_TYPES = {"rsa-2048": "RSA 2048", "rsa-4096": "RSA 4096", "ec-p256": "EC P-256"}
DEFAULT_KEY_TYPE = "rsa-2048"
MAX_SUBJECT_LENGTH = 512
MAX_SUBJECT_ATTRIBUTES = 16


class SubjectError(ValueError):
    """A subject the portal will not put into a CSR; the message says why."""


@dataclass(frozen=True)
class NewKey:
    """A fresh key (PKCS#8 DER, to be sealed at once) and the CSR for it."""

    key_type: str
    subject: str
    csr_pem: str
    public_key_sha256: str
    key_der: bytes = field(repr=False)


def parse_subject(text: str) -> x509.Name:
    """The subject as an x509.Name; SubjectError names what is wrong with it."""
    text = text.strip()
    if not text:
        raise SubjectError("The subject is empty: give at least a CN, e.g. CN=frontend-app,O=Example,C=DE.")
    if len(text) > MAX_SUBJECT_LENGTH:
        raise SubjectError(f"The subject is longer than {MAX_SUBJECT_LENGTH} characters.")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        raise SubjectError("The subject contains control characters.")
    try:
        name = x509.Name.from_rfc4514_string(text)
    except ValueError as exc:
        detail = str(exc) or "use attributes such as CN=…,O=…,C=DE (RFC 4514), commas escaped as \\,"
        raise SubjectError(f"The subject is not a distinguished name: {detail}.") from None
    attributes = list(name)
    if len(attributes) > MAX_SUBJECT_ATTRIBUTES:
        raise SubjectError(f"The subject has more than {MAX_SUBJECT_ATTRIBUTES} attributes.")
    if not name.get_attributes_for_oid(NameOID.COMMON_NAME):
        raise SubjectError("The subject has no common name (CN=…).")
    if any(not attribute.value for attribute in attributes):
        raise SubjectError("The subject has an empty attribute.")
    return name


def new_key(key_type: str, subject: str) -> NewKey:
    """Generate a key of ``key_type`` (one of KEY_TYPES) and a CSR for ``subject`` signed with it."""
    name = parse_subject(subject)
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if key_type == "rsa-2048":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif key_type == "rsa-4096":
        key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    elif key_type == "ec-p256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"Unknown key type {key_type!r}: use one of {', '.join(KEY_TYPES)}.")
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        # What IAS uses it for: a TLS client certificate (RFC 5280 §4.2.1.12).
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return NewKey(
        key_type=key_type,
        subject=name.rfc4514_string(),
        csr_pem=request.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        public_key_sha256=public_key_sha256(key.public_key()),
        key_der=der,
    )


def public_key_sha256(public_key) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, hex: equal for a certificate and its key."""
    return hashlib.sha256(spki_der(public_key)).hexdigest()


def certificate_public_key_sha256(pem: str) -> str:
    return public_key_sha256(x509.load_pem_x509_certificate(pem.encode("ascii")).public_key())
