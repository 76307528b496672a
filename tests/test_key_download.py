"""The private key leaves the portal only to an owner, by POST, unencrypted or with his password, audited.

Changing a certificate's lifecycle is an owner's action too, and audited as well.
"""

from __future__ import annotations

import html
import re

import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from django.urls import reverse

from certmgr.models import AuditEvent, Certificate
from tests import certs

OTTO_ADDR = "203.0.113.7"


def text_of(response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", response.content.decode()))


def public_numbers(key):
    return key.public_key().public_numbers()


@pytest.fixture(autouse=True)
def _mid_life():
    with time_machine.travel(certs.MID_LIFE, tick=False):
        yield


@pytest.fixture
def keyed(store, leaf):
    """Frontend's certificate, stored with its private key."""
    return store(leaf.pem + leaf.key_pem(), store_keys=True)


@pytest.fixture
def keyless(store):
    return store(certs.issue("frontend-app (P000043)", serial=0x1001, key_slot=1).pem)


def download(client, cert, password="", **extra):
    return client.post(reverse("certificate-key", args=[cert.pk]), {"password": password}, **extra)


def key_reads():
    return AuditEvent.objects.filter(action=AuditEvent.Action.KEY_READ)


# --- downloading the key ----------------------------------------------------------------------


def test_the_owner_downloads_the_key_as_pkcs8_pem(client, owner, keyed, leaf):
    client.force_login(owner)

    response = download(client, keyed)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-pem-file"
    assert (
        response["Content-Disposition"] == f'attachment; filename="frontend-{leaf.fingerprint[:12]}.key.pem"'
    )
    assert response.content.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(response.content, None)
    assert public_numbers(key) == public_numbers(leaf.key)


def test_with_a_password_the_key_is_encrypted_and_opens_only_with_it(client, owner, keyed, leaf):
    client.force_login(owner)

    response = download(client, keyed, password="Otto's download pass")

    assert response.content.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(response.content, b"Otto's download pass")
    assert public_numbers(key) == public_numbers(leaf.key)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(response.content, b"wrong")
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(response.content, None)


def test_the_download_is_never_cached(client, owner, keyed):
    client.force_login(owner)

    response = download(client, keyed)

    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


def test_every_download_is_audited_with_who_and_from_where(client, owner, keyed):
    client.force_login(owner)

    download(client, keyed, REMOTE_ADDR=OTTO_ADDR)
    download(client, keyed, password="pw", REMOTE_ADDR=OTTO_ADDR)

    reads = list(key_reads())
    assert len(reads) == 2
    for event in reads:
        assert (event.actor, event.actor_label, event.remote_addr) == (owner, "otto", OTTO_ADDR)
        assert (event.certificate, event.application) == (keyed, keyed.application)
        assert event.at == certs.MID_LIFE


def test_the_certificate_page_lists_recent_key_reads_to_the_owner(client, owner, keyed):
    client.force_login(owner)
    download(client, keyed, REMOTE_ADDR=OTTO_ADDR)

    page = text_of(client.get(keyed.get_absolute_url()))

    assert "Recent key reads" in page
    assert f"2026-06-01 12:00 UTC — otto from {OTTO_ADDR}" in page


def test_an_admin_may_download_any_key(client, admin_user, keyed):
    client.force_login(admin_user)

    response = download(client, keyed)

    assert response.content.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert key_reads().get().actor == admin_user


def test_a_viewer_gets_403_no_key_and_no_audit_entry(client, viewer, keyed):
    client.force_login(viewer)

    response = download(client, keyed)

    assert response.status_code == 403
    assert b"PRIVATE KEY" not in response.content
    assert "Only the application's owners and admins may download its private key." in text_of(response)
    assert not key_reads().exists()


def test_a_viewer_sees_no_download_form(client, viewer, keyed):
    client.force_login(viewer)

    page = client.get(keyed.get_absolute_url()).content.decode()

    assert reverse("certificate-key", args=[keyed.pk]) not in page
    assert "Only the application's owners and admins may download it." in page


def test_get_is_not_allowed(client, owner, keyed):
    client.force_login(owner)

    response = client.get(reverse("certificate-key", args=[keyed.pk]))

    assert response.status_code == 405
    assert b"PRIVATE KEY" not in response.content
    assert not key_reads().exists()


def test_a_certificate_without_a_key_gives_a_message_not_a_download(client, owner, keyless):
    client.force_login(owner)

    response = download(client, keyless)

    assert response.status_code == 302
    assert response["Location"] == keyless.get_absolute_url()
    assert "No private key is stored for this certificate." in text_of(client.get(response["Location"]))
    assert not key_reads().exists()


def test_a_key_that_does_not_belong_to_the_certificate_is_not_handed_out(client, owner, keyed, keyless):
    Certificate.objects.filter(pk=keyless.pk).update(encrypted_private_key=keyed.encrypted_private_key)
    client.force_login(owner)

    response = download(client, keyless)

    assert response.status_code == 302
    assert "does not belong to this certificate" in text_of(client.get(response["Location"]))
    assert not key_reads().exists()


def test_an_unknown_certificate_is_404(client, owner, keyed):
    client.force_login(owner)

    assert download(client, Certificate(pk=keyed.pk + 1000)).status_code == 404


# --- lifecycle --------------------------------------------------------------------------------


def change_lifecycle(client, cert, lifecycle, **extra):
    return client.post(reverse("certificate-lifecycle", args=[cert.pk]), {"lifecycle": lifecycle}, **extra)


def test_the_owner_retires_a_certificate_and_it_is_audited(client, owner, keyless):
    client.force_login(owner)

    response = change_lifecycle(client, keyless, "retired", REMOTE_ADDR=OTTO_ADDR)

    keyless.refresh_from_db()
    assert response["Location"] == keyless.get_absolute_url()
    assert keyless.lifecycle == Certificate.Lifecycle.RETIRED
    event = AuditEvent.objects.get(action=AuditEvent.Action.CERTIFICATE_CHANGED)
    assert (event.actor, event.certificate, event.remote_addr) == (owner, keyless, OTTO_ADDR)
    assert event.detail == "lifecycle active → retired"
    assert "Certificate is now retired." in text_of(client.get(response["Location"]))


def test_choosing_the_current_lifecycle_changes_and_audits_nothing(client, owner, keyless):
    client.force_login(owner)

    change_lifecycle(client, keyless, "active")

    assert not AuditEvent.objects.filter(action=AuditEvent.Action.CERTIFICATE_CHANGED).exists()


def test_an_unknown_lifecycle_is_ignored_without_error(client, owner, keyless):
    client.force_login(owner)

    response = change_lifecycle(client, keyless, "deleted")

    keyless.refresh_from_db()
    assert response.status_code == 302
    assert keyless.lifecycle == Certificate.Lifecycle.ACTIVE


def test_a_viewer_cannot_change_the_lifecycle(client, viewer, keyless):
    client.force_login(viewer)

    response = change_lifecycle(client, keyless, "retired")

    keyless.refresh_from_db()
    assert response.status_code == 403
    assert keyless.lifecycle == Certificate.Lifecycle.ACTIVE
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.CERTIFICATE_CHANGED).exists()


def test_lifecycle_changes_only_by_post(client, owner, keyless):
    client.force_login(owner)

    assert (
        client.get(reverse("certificate-lifecycle", args=[keyless.pk]), {"lifecycle": "retired"}).status_code
        == 405
    )
    keyless.refresh_from_db()
    assert keyless.lifecycle == Certificate.Lifecycle.ACTIVE
