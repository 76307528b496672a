"""Stored private keys: sealed with the configured keys, audited on every read, rotatable.
(That no key rests in clear anywhere: tests/test_secrets_at_rest.py.)"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from certmgr.core.keyvault import KeyVault, VaultError, generate_key
from certmgr.inventory import keys
from certmgr.models import AuditEvent, Certificate
from tests import certs
from tests.secret_forms import key_forms

pytestmark = pytest.mark.django_db


@pytest.fixture
def rsa_item(leaf):
    return leaf


@pytest.fixture
def ec_item():
    return certs.issue("ec-client (P000042)", key_kind="ec", serial=0x2000)


@pytest.fixture
def stored(store, rsa_item, ec_item):
    """An RSA and an EC certificate of 'frontend', their keys stored through the import path."""
    rsa_cert = store(rsa_item.pem + rsa_item.key_pem(), store_keys=True)
    ec_cert = store(certs.p12(ec_item, b"p12-pass"), password="p12-pass", store_keys=True)
    assert rsa_cert.has_private_key and ec_cert.has_private_key
    return {"rsa": (rsa_cert, rsa_item), "ec": (ec_cert, ec_item)}


def read(cert: Certificate, actor=None) -> bytes:
    return keys.read_private_key(cert, actor=actor, actor_label="otto", purpose="health check")


# --- the forms a key takes -------------------------------------------------------------------


def secrets_of(item: certs.Issued) -> dict[str, bytes]:
    """Ways a private key could show up in a dump, a log or a page, each as the bytes to look for
    (tests/secret_forms.py); "PEM label" is any key's armour. Where keys rest and whether they
    rest in clear: tests/test_secrets_at_rest.py."""
    return {"PEM label": b"PRIVATE KEY", **key_forms(item.key)}


# --- the stored token ------------------------------------------------------------------------


def test_the_stored_token_decrypts_with_the_configured_keys_to_the_original_der(settings, stored):
    for cert, item in stored.values():
        token = bytes(Certificate.objects.get(pk=cert.pk).encrypted_private_key)

        assert KeyVault(settings.CERTMGR_ENCRYPTION_KEYS).decrypt(token) == item.key_der()
        with pytest.raises(VaultError, match="cannot be decrypted with any configured encryption key"):
            KeyVault([generate_key()]).decrypt(token)


def test_without_store_keys_no_key_is_kept(store, rsa_item):
    cert = store(rsa_item.pem + rsa_item.key_pem(), store_keys=False)

    assert Certificate.objects.get(pk=cert.pk).encrypted_private_key is None
    with pytest.raises(VaultError, match="No private key is stored for this certificate"):
        read(cert)


# --- reading a key ---------------------------------------------------------------------------


def test_reading_a_key_writes_an_audit_event_each_time(owner, stored):
    cert, item = stored["rsa"]
    cert = Certificate.objects.get(pk=cert.pk)
    before = AuditEvent.objects.filter(action=AuditEvent.Action.KEY_READ).count()

    first, second = read(cert, owner), read(cert, owner)

    events = AuditEvent.objects.filter(action=AuditEvent.Action.KEY_READ)
    assert first == second == item.key_der()
    assert before == 0
    assert events.count() == 2
    for event in events:
        assert (event.actor, event.actor_label, event.certificate, event.detail) == (
            owner,
            "otto",
            cert,
            "health check",
        )
        assert event.application_id == cert.application_id


def test_reading_an_ec_key_returns_its_pkcs8_der(owner, stored):
    cert, item = stored["ec"]

    assert read(Certificate.objects.get(pk=cert.pk), owner) == item.key_der()


def test_a_token_copied_from_another_certificates_row_is_refused(owner, stored):
    (rsa_cert, _), (ec_cert, _) = stored["rsa"], stored["ec"]
    Certificate.objects.filter(pk=rsa_cert.pk).update(encrypted_private_key=ec_cert.encrypted_private_key)
    swapped = Certificate.objects.get(pk=rsa_cert.pk)

    with pytest.raises(VaultError, match="does not belong to this certificate"):
        read(swapped, owner)

    assert not AuditEvent.objects.filter(action=AuditEvent.Action.KEY_READ).exists()


# --- rotation --------------------------------------------------------------------------------


def test_rotation_re_encrypts_every_stored_key_with_the_new_key(settings, store, owner, stored):
    old = list(settings.CERTMGR_ENCRYPTION_KEYS)
    new = generate_key()
    keyless = store(certs.issue("no-key", key_kind="ec", key_slot=1, serial=0x3000).pem)
    tokens_before = {
        pk: bytes(t)
        for pk, t in Certificate.objects.exclude(encrypted_private_key=None).values_list(
            "pk", "encrypted_private_key"
        )
    }

    settings.CERTMGR_ENCRYPTION_KEYS = [new, *old]
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)

    assert out.getvalue().strip() == "Re-encrypted 2 private key(s) with the current encryption key."
    settings.CERTMGR_ENCRYPTION_KEYS = [new]
    for cert, item in stored.values():
        rotated = Certificate.objects.get(pk=cert.pk)
        assert bytes(rotated.encrypted_private_key) != tokens_before[cert.pk]
        assert read(rotated, owner) == item.key_der()
    settings.CERTMGR_ENCRYPTION_KEYS = old
    with pytest.raises(VaultError, match="cannot be decrypted"):
        read(Certificate.objects.get(pk=stored["rsa"][0].pk), owner)
    assert Certificate.objects.get(pk=keyless.pk).encrypted_private_key is None
    event = AuditEvent.objects.get(action=AuditEvent.Action.KEYS_ROTATED)
    assert (event.actor_label, event.detail) == ("rotate_encryption_keys", "2 private key(s) re-encrypted")


def test_rotation_is_safe_to_run_twice(settings, owner, stored):
    new = generate_key()
    settings.CERTMGR_ENCRYPTION_KEYS = [new, *settings.CERTMGR_ENCRYPTION_KEYS]
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    call_command("rotate_encryption_keys", stdout=io.StringIO())

    settings.CERTMGR_ENCRYPTION_KEYS = [new]
    cert, item = stored["ec"]
    assert read(Certificate.objects.get(pk=cert.pk), owner) == item.key_der()


# --- keys generated in the portal (pending keys) --------------------------------------------------
