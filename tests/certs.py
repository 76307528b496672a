"""The one place tests get certificates from: generated here, at fixed instants.

Keys are cached per (kind, slot) so a suite run generates each RSA key once.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Named instants. Tests freeze time at these, never at the real "today".
ISSUED = datetime(2026, 1, 15, 9, 0, 0, tzinfo=UTC)
EXPIRES = datetime(2027, 1, 15, 9, 0, 0, tzinfo=UTC)
MID_LIFE = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
TWENTY_DAYS_BEFORE_EXPIRY = EXPIRES - timedelta(days=20)
AFTER_EXPIRY = EXPIRES + timedelta(days=3)
BEFORE_ISSUE = ISSUED - timedelta(days=2)


@functools.cache
def private_key(kind: str = "rsa", slot: int = 0):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "rsa1024":
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: object

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    @property
    def not_after(self) -> datetime:
        return self.cert.not_valid_after_utc

    def key_pem(self, fmt: str = "pkcs8", password: bytes | None = None) -> bytes:
        formats = {
            "pkcs8": serialization.PrivateFormat.PKCS8,
            "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
        }
        encryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        return self.key.private_bytes(serialization.Encoding.PEM, formats[fmt], encryption)

    def key_der(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def issue(
    cn: str = "frontend-app (P000042)",
    *,
    not_before: datetime = ISSUED,
    not_after: datetime = EXPIRES,
    key_kind: str = "rsa",
    key_slot: int = 0,
    issuer: Issued | None = None,
    ca: bool = False,
    eku: tuple = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    sans: tuple[str, ...] = (),
    serial: int = 0x1000,
    org: str = "Example Corp",
) -> Issued:
    """A certificate for ``cn``; self-signed unless ``issuer`` is given."""
    key = private_key(key_kind, key_slot)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    signer = issuer.key if issuer else key
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return Issued(builder.sign(signer, algorithm), key)


def sign_csr(
    csr_pem: bytes | str,
    issuer: Issued,
    *,
    not_before: datetime = ISSUED,
    not_after: datetime = EXPIRES,
    serial: int = 0x5000,
) -> Issued:
    """What a CA outside the portal does with a CSR: a client certificate for its key and subject.
    The returned Issued has no key (it stayed in the portal)."""
    request = x509.load_pem_x509_csr(csr_pem.encode() if isinstance(csr_pem, str) else csr_pem)
    assert request.is_signature_valid
    cert = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(issuer.cert.subject)
        .public_key(request.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )
    return Issued(cert, None)


@functools.cache
def ca_hierarchy() -> tuple[Issued, Issued, Issued]:
    """(root, intermediate, leaf) with distinct keys, issued at ISSUED."""
    root = issue(
        "Example Root CA", ca=True, eku=(), key_slot=101, serial=1, not_after=ISSUED + timedelta(days=3650)
    )
    inter = issue(
        "Example Client CA",
        ca=True,
        eku=(),
        issuer=root,
        key_slot=102,
        serial=2,
        not_after=ISSUED + timedelta(days=1825),
    )
    leaf = issue("frontend-app (P000042)", issuer=inter, key_slot=103, serial=3)
    return root, inter, leaf


def p12(item: Issued, password: bytes | None, extra: tuple[Issued, ...] = ()) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(
        b"client", item.key, item.cert, [e.cert for e in extra] or None, encryption
    )


def p12_3des(item: Issued, password: bytes) -> bytes:
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(password)
    )
    return pkcs12.serialize_key_and_certificates(b"client", item.key, item.cert, None, encryption)


def p12_rc2_40(item: Issued, password: str) -> bytes:
    """RC2-40 (what old tools and old IAS exports used); only OpenSSL's CLI still writes it."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, key, out = Path(tmp, "c.pem"), Path(tmp, "k.pem"), Path(tmp, "o.p12")
        cert.write_bytes(item.pem)
        key.write_bytes(item.key_pem())
        subprocess.run(
            [
                "openssl",
                "pkcs12",
                "-export",
                "-legacy",
                "-certpbe",
                "PBE-SHA1-RC2-40",
                "-keypbe",
                "PBE-SHA1-3DES",
                "-in",
                str(cert),
                "-inkey",
                str(key),
                "-passout",
                f"pass:{password}",
                "-out",
                str(out),
            ],
            check=True,
            capture_output=True,
        )
        return out.read_bytes()


def p7b(*items: Issued) -> bytes:
    return pkcs7.serialize_certificates([i.cert for i in items], serialization.Encoding.DER)


def service_key(
    item: Issued,
    *,
    clientid: str,
    url: str,
    domains: tuple[str, ...] = ("accounts.ondemand.com",),
    with_key: bool = False,
) -> bytes:
    """A `cf service-key` document of an identity binding: X509_PROVIDED, or X509_GENERATED with the key."""
    credentials = {
        "clientid": clientid,
        "url": url,
        "domains": list(domains),
        "credential-type": "X509_GENERATED" if with_key else "X509_PROVIDED",
        "certificate": item.pem.decode("ascii"),
        "certificate_expires_at": item.not_after.isoformat(),
    }
    if with_key:
        credentials["key"] = item.key_pem().decode("ascii")
    return json.dumps({"credentials": credentials}, indent=2).encode("utf-8")


def made_up_facts(n: int, not_after: datetime = EXPIRES, *, cn: str = "bulk-client") -> dict:
    """Plausible, distinct certificate facts without a real certificate behind them.

    For tests that need many rows fast (pagination, query counts): insert them directly.
    """
    digest = hashlib.sha256(f"made-up certificate {n}".encode()).digest()
    return {
        "pem": "-----BEGIN CERTIFICATE-----\nbWFkZS11cA==\n-----END CERTIFICATE-----\n",
        "subject": f"CN={cn}-{n:04d},O=Example Corp,C=DE",
        "issuer": f"CN={cn}-{n:04d},O=Example Corp,C=DE",
        "serial": format(0x10000 + n, "x"),
        "not_before": not_after - timedelta(days=365),
        "not_after": not_after,
        "fingerprint": digest.hex(),
        "x5t_s256": base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"),
        "key_algorithm": "RSA",
        "key_size": 2048,
        "extended_key_usage": ["clientAuth"],
        "self_issued": True,
        "source_format": "pem",
    }


def identity_credentials(item: Issued, *, with_key: bool = False, **fields) -> dict:
    """What the identity broker returns for a binding (X509_PROVIDED, or X509_GENERATED with the key)."""
    credentials = {
        "clientid": "5fd2be25-0e09-4321-8817-4a7b11a2ace2",
        "url": "https://mytenant.accounts.ondemand.com",
        "domains": ["accounts.ondemand.com", "accounts.cloud.sap"],
        "app_tid": "2c1a9b4e-7d3f-4e2a-9b8c-1d2e3f4a5b6c",
        "certurl": "https://mytenant.accounts.ondemand.com",
        "credential-type": "X509_GENERATED" if with_key else "X509_PROVIDED",
        "certificate": item.pem.decode("ascii"),
        "certificate_expires_at": item.not_after.isoformat(),
        "authorization_endpoint": "https://mytenant.accounts.ondemand.com/oauth2/authorize",
        **fields,
    }
    if with_key:
        credentials["key"] = item.key_pem().decode("ascii")
    return credentials


def k8s_secret(credentials: dict, layout: str = "fields", *, name: str = "frontend-ias-binding") -> dict:
    """The Secret the SAP BTP service operator writes for a ServiceBinding, as `kubectl get -o json` shows it.

    ``layout``: "fields" (the default: one key per credential field, non-strings as JSON text),
    "secretKey" (the credentials JSON under one key), "secretRootKey" (everything under one key), or
    "both" (secretRootKey and secretKey together). Mirrors SAP/sap-btp-service-operator's
    controllers/servicebinding_controller.go (getSecretDefaultData, singleKeyMap).
    """

    def text(value) -> str:
        return value if isinstance(value, str) else json.dumps(value)

    instance = {
        "instance_name": "frontend-ias",
        "instance_guid": "0d8c1a52-4c7e-4a4b-9a51-3b2f0e6c7d11",
        "plan": "application",
        "label": "identity",
        "type": "identity",
        "tags": json.dumps(["ias"]),
    }
    if layout in ("secretKey", "both"):
        values = {"credentials": json.dumps(credentials), **instance}
    else:
        values = {key: text(value) for key, value in credentials.items()} | instance
    if layout in ("secretRootKey", "both"):
        values = {"binding": json.dumps(values)}
    else:
        values[".metadata"] = json.dumps({"metaDataProperties": [], "credentialProperties": []})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "frontend", "annotations": {"binding": name}},
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode("ascii") for key, value in values.items()},
    }
