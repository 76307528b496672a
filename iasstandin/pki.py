"""The stand-in's own PKI: a CA, the TLS server certificate it issues, and the token signing key.

Also the RFC 8705 thumbprint, computed here with hashlib rather than borrowed from the portal, so
that a wrong thumbprint in the portal cannot be mirrored by the stand-in that checks it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import ipaddress
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

# Fixed, not relative to "now": tests freeze Python's clock far from today, but OpenSSL on the
# client side checks the server certificate against the real clock.
VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)
VALID_UNTIL = datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)

CA_NAME = "IAS stand-in CA"
PEM_CERT_BEGIN = b"-----BEGIN CERTIFICATE-----"


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE and RFC 8705 use it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(der: bytes) -> str:
    """x5t#S256 of a certificate: base64url (unpadded) of SHA-256 over its DER (RFC 8705 §3.1)."""
    return b64url(hashlib.sha256(der).digest())


def certificate_thumbprint(cert: x509.Certificate) -> str:
    return thumbprint(cert.public_bytes(serialization.Encoding.DER))


def first_certificate(pem: str | bytes) -> x509.Certificate:
    """The first certificate of a PEM text: the client (leaf) certificate of a chain as IAS takes it."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    start = data.find(PEM_CERT_BEGIN)
    if start < 0:
        raise ValueError("no PEM certificate found")
    return x509.load_pem_x509_certificates(data[start:])[0]


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """A stable kid: the first 16 hex characters of SHA-256 over the public key's DER."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def new_signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` in one step, so a reader in another process never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Pki:
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    server_cert: x509.Certificate
    server_key: ec.EllipticCurvePrivateKey
    signing_key: rsa.RSAPrivateKey

    @property
    def ca_pem(self) -> bytes:
        return self.ca_cert.public_bytes(serialization.Encoding.PEM)

    @property
    def kid(self) -> str:
        return key_id(self.signing_key.public_key())

    @classmethod
    def create(cls) -> Pki:
        ca_key, server_key = _new_tls_key(), _new_tls_key()
        ca_cert = _ca_certificate(ca_key)
        server_cert = _server_certificate(server_key, ca_cert, ca_key)
        return cls(ca_cert, ca_key, server_cert, server_key, new_signing_key())

    @classmethod
    def load_or_create(cls, directory: Path) -> Pki:
        """Reuse what ``directory`` holds, so the CA the portal trusts survives a restart."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)  # it holds private keys
        ca_cert, ca_key = _load_pair(directory, "ca")
        if ca_cert is None:
            ca_key = _new_tls_key()
            ca_cert = _ca_certificate(ca_key)
            _save_pair(directory, "ca", ca_cert, ca_key)
        server_cert, server_key = _load_pair(directory, "server")
        if server_cert is None or not _issued_by(server_cert, ca_cert):
            server_key = _new_tls_key()
            server_cert = _server_certificate(server_key, ca_cert, ca_key)
            _save_pair(directory, "server", server_cert, server_key)
        signing_path = directory / "signing-key.pem"
        if signing_path.exists():
            signing_key = serialization.load_pem_private_key(signing_path.read_bytes(), None)
        else:
            signing_key = new_signing_key()
            atomic_write(signing_path, _private_pem(signing_key))
        return cls(ca_cert, ca_key, server_cert, server_key, signing_key)


def _new_tls_key() -> ec.EllipticCurvePrivateKey:
    # P-256 rather than RSA: generated in microseconds, and every TLS client takes it.
    return ec.generate_private_key(ec.SECP256R1())


def _issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _private_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_pair(directory: Path, stem: str):
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
    if not (cert_path.exists() and key_path.exists()):
        return None, None
    return (
        x509.load_pem_x509_certificate(cert_path.read_bytes()),
        serialization.load_pem_private_key(key_path.read_bytes(), None),
    )


def _save_pair(directory: Path, stem: str, cert: x509.Certificate, key) -> None:
    atomic_write(directory / f"{stem}-key.pem", _private_pem(key))
    atomic_write(directory / f"{stem}.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(VALID_FROM)
        .not_valid_after(VALID_UNTIL)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    return (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(key, ca_cert: x509.Certificate, ca_key) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    sans = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        _builder(name, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


@contextlib.contextmanager
def locked_file(directory: Path, name: str):
    """``directory/name`` held under an exclusive lock (``.name.lock``): two processes that
    read-modify-write the same file must not drop each other's change."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(directory / f".{name.split('.')[0]}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield directory / name
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class Watched:
    """What a file of the stand-in's directory holds, read again when another process replaced it
    (``./dev run``'s commands write clients, users and tenant settings while it serves)."""

    def __init__(self, path: Path | None, read, empty, what: str):
        self.path, self._read, self.what = path, read, what
        self.lock = threading.Lock()
        self.value = empty
        self._seen: tuple | None = None

    def current(self):
        if self.path is None:
            return self.value
        try:
            st = os.stat(self.path)
            # The inode changes with every os.replace, so even two writes within one mtime tick show.
            seen = (st.st_mtime_ns, st.st_ino, st.st_size)
        except FileNotFoundError:
            seen = None
        with self.lock:
            if seen != self._seen:
                try:
                    self.value, self._seen = self._read(self.path), seen
                except ValueError as exc:  # a hand edit gone wrong: say so, keep serving
                    log.warning("iasstandin: keeping the previous %s: %s", self.what, exc)
            return self.value
