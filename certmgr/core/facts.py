"""Facts about one X.509 certificate, as plain data."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from .errors import InputError

_SAN_PREFIX: dict[type, str] = {
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
    # Each property access on a cryptography certificate builds new Python objects: read each once.
    digest = cert.fingerprint(hashes.SHA256())
    subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
    extensions = _extensions(cert)
    algorithm, size, curve = public_key_description(cert.public_key())
    constraints = extensions.get(x509.BasicConstraints)
    return CertificateFacts(
        pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        subject=subject,
        issuer=issuer,
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=digest.hex(),
        # RFC 8705 §3.1: base64url of the SHA-256 of the DER, without padding.
        x5t_s256=base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"),
        key_algorithm=algorithm,
        key_size=size,
        key_curve=curve,
        sans=_sans(extensions.get(x509.SubjectAlternativeName)),
        extended_key_usage=_eku(extensions.get(x509.ExtendedKeyUsage)),
        is_ca=bool(constraints and constraints.ca),
        # RFC 4514 strings are equal exactly when the names are: no need to build the Names again.
        self_issued=subject == issuer,
    )


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


def spki_der(public_key) -> bytes:
    """The DER SubjectPublicKeyInfo: equal for a certificate and its private key's public half."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def format_fingerprint(hex_digest: str) -> str:
    return ":".join(hex_digest[i : i + 2] for i in range(0, len(hex_digest), 2)).upper()


def _extensions(cert: x509.Certificate) -> dict:
    try:
        return {type(ext.value): ext.value for ext in cert.extensions}
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:  # malformed
        raise InputError(
            InputError.CORRUPT, f"The certificate's extensions cannot be decoded ({exc})."
        ) from None


def _sans(value: x509.SubjectAlternativeName | None) -> tuple[str, ...]:
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


def _eku(value: x509.ExtendedKeyUsage | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(oid._name if oid._name != "Unknown OID" else oid.dotted_string for oid in value)
