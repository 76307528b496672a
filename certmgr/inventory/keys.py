"""Private keys of stored certificates: sealed on the way in, audited on every read."""

from __future__ import annotations

import functools

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from ..core.facts import spki_der
from ..core.keyvault import KeyVault, VaultError
from ..models import AuditEvent, Certificate

__all__ = ["VaultError", "export_pem", "read_private_key", "seal", "vault"]


@functools.cache
def _vault(keys: tuple[str, ...]) -> KeyVault:
    return KeyVault(keys)


def vault() -> KeyVault:
    return _vault(tuple(settings.CERTMGR_ENCRYPTION_KEYS))


@sensitive_variables("private_key_der")
def seal(private_key_der: bytes) -> bytes:
    return vault().encrypt(private_key_der)


@sensitive_variables("der", "key", "data")
def read_private_key(
    certificate: Certificate,
    *,
    actor=None,
    actor_label: str,
    remote_addr=None,
    purpose: str,
    audit_rows: list[AuditEvent] | None = None,
) -> bytes:
    """The PKCS#8 DER of the certificate's key. Writes an audit entry before returning it; with
    ``audit_rows``, appends it there instead, unsaved: the caller saves it in the same transaction,
    committed before the key is used (the scheduled check saves its audit rows in one INSERT)."""
    if certificate.encrypted_private_key is None:
        raise VaultError("No private key is stored for this certificate.")
    der = vault().decrypt(certificate.encrypted_private_key)
    # The key was validated when it was stored and the vault authenticates what it returns;
    # re-checking an RSA key's math costs ~40 ms per read. It must still match the certificate.
    key = serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)
    cert = x509.load_pem_x509_certificate(certificate.pem.encode("ascii"))
    if spki_der(key.public_key()) != spki_der(cert.public_key()):
        # A token copied from another row decrypts fine; it must still belong to this certificate.
        raise VaultError("The stored private key does not belong to this certificate.")
    event = AuditEvent(
        actor=actor,
        actor_label=actor_label,
        action=AuditEvent.Action.KEY_READ,
        application_id=certificate.application_id,
        certificate=certificate,
        remote_addr=remote_addr,
        detail=purpose,
    )
    if audit_rows is None:
        event.save()
    else:
        audit_rows.append(event)
    return der


@sensitive_variables("der", "password", "key")
def export_pem(der: bytes, password: str = "") -> bytes:
    key = serialization.load_der_private_key(der, None)
    encryption = (
        serialization.BestAvailableEncryption(password.encode("utf-8"))
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
