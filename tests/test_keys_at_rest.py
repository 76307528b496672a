"""Stored private keys: encrypted at rest, audited on every read, rotatable."""

from __future__ import annotations

import base64
import io
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import call_command
from django.db import connection

from certmgr.core.keyvault import KeyVault, VaultError, generate_key
from certmgr.inventory import keys
from certmgr.models import AuditEvent, Certificate
from tests import certs

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


# --- what a dump of the database shows -------------------------------------------------------


def secrets_of(item: certs.Issued) -> dict[str, bytes]:
    """Ways a private key could show up in a dump, each as the bytes to look for."""
    der = item.key_der()
    numbers = item.key.private_numbers()
    private = numbers.d if isinstance(item.key, rsa.RSAPrivateKey) else numbers.private_value
    private_hex = format(private, "x")
    return {
        "PEM label": b"PRIVATE KEY",
        "DER bytes": der,
        "DER bytes (a window)": der[len(der) // 2 : len(der) // 2 + 24],
        "DER hex": der.hex().encode(),
        "DER HEX": der.hex().upper().encode(),
        "DER base64": base64.b64encode(der),
        "DER base64, first PEM line": base64.b64encode(der)[:64],
        "DER base64url": base64.urlsafe_b64encode(der).rstrip(b"="),
        "private value hex": private_hex.encode(),
        "private value HEX": private_hex.upper().encode(),
    }


def leaks(dump: bytes, items) -> list[str]:
    return [
        f"{kind}: {name}"
        for kind, item in items.items()
        for name, needle in secrets_of(item).items()
        if needle in dump
    ]


def dumpdata() -> bytes:
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    return out.getvalue().encode("utf-8")


def sqlite_dump() -> bytes:
    connection.ensure_connection()
    return "\n".join(connection.connection.iterdump()).encode("utf-8")


def pg_dump() -> bytes:
    db = connection.settings_dict
    command = ["pg_dump", "--no-owner", "-h", db["HOST"] or "localhost", "-p", str(db["PORT"] or 5432)]
    command += ["-U", db["USER"], db["NAME"]]
    env = {"PGPASSWORD": db["PASSWORD"]} if db["PASSWORD"] else {}
    done = subprocess.run(
        command, capture_output=True, check=True, timeout=120, env={"PATH": "/usr/bin:/bin", **env}
    )
    return done.stdout


SQL_DUMPS = {"sqlite": sqlite_dump, "postgresql": pg_dump}


@pytest.fixture(params=["dumpdata", "sql dump"])
def dump(request):
    """Django's dumpdata, and the database's own SQL dump (iterdump on SQLite, pg_dump on PostgreSQL)."""
    return dumpdata if request.param == "dumpdata" else SQL_DUMPS[connection.vendor]


@pytest.mark.django_db(transaction=True)
def test_a_full_dump_holds_no_private_key_in_clear(dump, stored):
    items = {kind: item for kind, (_, item) in stored.items()}
    text = dump()

    assert leaks(text, items) == []
    for cert, _ in stored.values():  # the dump does hold the rows, with their certificates
        assert cert.fingerprint.encode() in text


@pytest.mark.django_db(transaction=True)
def test_the_dump_search_finds_a_key_stored_in_clear(dump, stored):
    """Control: the search above is able to fail."""
    for cert, item in stored.values():
        Certificate.objects.filter(pk=cert.pk).update(encrypted_private_key=item.key_der())
    items = {kind: item for kind, (_, item) in stored.items()}

    found = leaks(dump(), items)

    assert {line.split(":")[0] for line in found} == {"rsa", "ec"}


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


def pending_secrets(pending) -> certs.Issued:
    """A pending key as the search above wants it: the private key (read back through the vault)."""
    from cryptography.hazmat.primitives import serialization

    der = keys.vault().decrypt(bytes(pending.encrypted_private_key))
    return certs.Issued(cert=None, key=serialization.load_der_private_key(der, None))


@pytest.mark.django_db(transaction=True)
def test_a_pending_key_is_in_no_page_log_or_dump(dump, mid_life, client, owner, frontend_app, caplog):
    """Generated through the page, its CSR downloaded: the key is in no response, no log line, no
    dump; when its certificate arrives it moves to the certificate's row, sealed, and stays hidden."""
    import logging

    from django.urls import reverse

    from certmgr.models import PendingKey

    client.force_login(owner)
    caplog.set_level(logging.DEBUG)
    url = reverse("pending-key-new", args=["frontend"])
    subject = "CN=frontend-app (P000042),O=Example Corp,C=DE"
    pages = [
        client.post(url, {"key_type": kind, "subject": subject}, follow=True)
        for kind in ("rsa-2048", "ec-p256")
    ]
    made = {p.key_type: p for p in PendingKey.objects.all()}
    items = {kind: pending_secrets(pending) for kind, pending in made.items()}
    pages += [client.get(reverse("pending-key-csr", args=["frontend", p.pk])) for p in made.values()]
    pages.append(client.get(reverse("application-rotation", args=["frontend"])))
    _, intermediate, _ = certs.ca_hierarchy()
    signed = certs.sign_csr(made["ec-p256"].csr_pem, intermediate, serial=0x5151)
    shown = client.post(
        reverse("upload"),
        {"application": frontend_app.pk, "text": signed.pem.decode(), "lifecycle": "staged"},
    )
    pages += [
        shown,
        client.post(reverse("upload"), {"step": "confirm", "token": shown.context["token"]}, follow=True),
    ]
    logged = "\n".join(record.getMessage() for record in caplog.records).encode()

    assert Certificate.objects.get(fingerprint=signed.fingerprint).has_private_key  # it did arrive
    assert leaks(b"\n".join(page.content for page in pages), items) == []
    assert leaks(logged, items) == []
    assert leaks(dump(), items) == []


@pytest.mark.django_db(transaction=True)
def test_the_dump_search_finds_a_pending_key_stored_in_clear(dump, mid_life, frontend_app):
    """Control: with the key written in clear, the search above finds it."""
    from certmgr.models import PendingKey
    from certmgr.rotation import pending_keys

    pending = pending_keys.create(frontend_app, subject="CN=frontend", key_type="ec-p256", actor_label="test")
    item = pending_secrets(pending)
    PendingKey.objects.filter(pk=pending.pk).update(encrypted_private_key=item.key_der())

    assert {line.split(":")[0] for line in leaks(dump(), {"ec": item})} == {"ec"}
