"""Facts about one X.509 certificate, as plain data."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

_SAN_PREFIX = {
    x509.DNSName: "DNS",
    x509.RFC822Name: "email",
    x509.UniformResourceIdentifier: "URI",
    x509.IPAddress: "IP",
    x509.RegisteredID: "RID",
}


@dataclass(frozen=True)
class CertificateFacts:
    pem: str
    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    sha256: str
    x5t_s256: str
    key_algorithm: str
    key_size: int
    key_curve: str
    sans: tuple[str, ...]
    extended_key_usage: tuple[str, ...]
    is_ca: bool
    self_issued: bool


def certificate_facts(cert: x509.Certificate) -> CertificateFacts:
    der = cert.public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).digest()
    algorithm, size, curve = public_key_description(cert.public_key())
    return CertificateFacts(
        pem=pem_of(der),
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=digest.hex(),
        # RFC 8705 §3.1: base64url of the SHA-256 of the DER, without padding.
        x5t_s256=base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"),
        key_algorithm=algorithm,
        key_size=size,
        key_curve=curve,
        sans=_sans(cert),
        extended_key_usage=_eku(cert),
        is_ca=_is_ca(cert),
        self_issued=cert.subject == cert.issuer,
    )


def pem_of(der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def public_key_description(key) -> tuple[str, int, str]:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, ""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, ""
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, ""
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, ""
    return type(key).__name__, 0, ""


def format_fingerprint(hex_digest: str) -> str:
    return ":".join(hex_digest[i : i + 2] for i in range(0, len(hex_digest), 2)).upper()


def _extension(cert: x509.Certificate, kind):
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    value = _extension(cert, x509.SubjectAlternativeName)
    if value is None:
        return ()
    out = []
    for name in value:
        if isinstance(name, x509.DirectoryName):
            out.append("DirName:" + name.value.rfc4514_string())
        elif isinstance(name, x509.OtherName):
            out.append("otherName:" + name.type_id.dotted_string)
        else:
            out.append(f"{_SAN_PREFIX[type(name)]}:{name.value}")
    return tuple(out)


def _eku(cert: x509.Certificate) -> tuple[str, ...]:
    value = _extension(cert, x509.ExtendedKeyUsage)
    if value is None:
        return ()
    return tuple(oid._name if oid._name != "Unknown OID" else oid.dotted_string for oid in value)


def _is_ca(cert: x509.Certificate) -> bool:
    value = _extension(cert, x509.BasicConstraints)
    return bool(value and value.ca)
