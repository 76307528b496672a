"""Otto starts a rotation in the portal: a new key (kept sealed, pending) and its CSR; the
certificate the CA makes of it comes back through the upload page or import_certs and is
stored with that key. Pending keys can be discarded, and expire."""

from __future__ import annotations

import html
import io
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.management import call_command
from django.urls import reverse

from certmgr.core import csr
from certmgr.inventory import keys
from certmgr.models import AuditEvent, Certificate, PendingKey
from certmgr.rotation import pending_keys
from tests import certs

pytestmark = pytest.mark.django_db
SUBJECT = "CN=frontend-app (P000042),O=Example Corp,C=DE"
DAY = timedelta(days=1)


def text_of(response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", response.content.decode()))


@pytest.fixture(autouse=True)
def _mid_life():
    with time_machine.travel(certs.MID_LIFE, tick=False):
        yield


@pytest.fixture
def active(store, leaf):
    """Frontend's certificate in use: its subject DN is what a new CSR should keep."""
    return store(leaf.pem)


def new_key(client, app, **data):
    return client.post(reverse("pending-key-new", args=[app.slug]), {"key_type": "ec-p256", **data})


def signed(pending: PendingKey, serial: int = 0x5001, **validity) -> certs.Issued:
    """The CA outside the portal signs the CSR (the suite's test CA, at fixed instants)."""
    _, intermediate, _ = certs.ca_hierarchy()
    return certs.sign_csr(pending.csr_pem, intermediate, serial=serial, **validity)


def upload(client, app, item: certs.Issued, lifecycle="staged"):
    shown = client.post(
        reverse("upload"), {"application": app.pk, "text": item.pem.decode(), "lifecycle": lifecycle}
    )
    saved = client.post(reverse("upload"), {"step": "confirm", "token": shown.context["token"]})
    return shown, saved


def sealed_key(pending: PendingKey):
    return serialization.load_der_private_key(keys.vault().decrypt(pending.encrypted_private_key), None)


# --- making the key and the CSR -------------------------------------------------------------------


@pytest.mark.parametrize(("key_type", "kind", "size"), [("rsa-2048", "RSA", 2048), ("rsa-4096", "RSA", 4096),
                                                       ("ec-p256", "EC", 256)])  # fmt: skip
def test_the_csr_is_signed_by_the_new_key_of_the_chosen_type(key_type, kind, size):
    made = csr.new_key(key_type, SUBJECT)

    request = x509.load_pem_x509_csr(made.csr_pem.encode())
    key = serialization.load_der_private_key(made.key_der, None)
    assert request.is_signature_valid
    assert request.public_key().public_numbers() == key.public_key().public_numbers()
    assert (type(key).__name__.startswith("_" + kind) or kind in type(key).__name__, key.key_size) == (
        True,
        size,
    )
    assert made.public_key_sha256 == csr.public_key_sha256(request.public_key())
    assert "key_der" not in repr(made) and made.key_der.hex() not in repr(made)


def test_the_form_proposes_the_subject_in_use_and_the_csr_keeps_it(otto, frontend_app, active, leaf):
    page = otto.get(reverse("application-rotation", args=["frontend"]))
    assert page.context["form"]["subject"].value() == leaf.subject

    response = new_key(otto, frontend_app, subject=leaf.subject)

    assert response.status_code == 302
    pending = PendingKey.objects.get()
    download = otto.get(reverse("pending-key-csr", args=["frontend", pending.pk]))
    request = x509.load_pem_x509_csr(download.content)
    assert download["Content-Type"] == "application/pkcs10"
    assert request.subject == leaf.cert.subject  # the same DN, attribute for attribute: no replication delay
    assert csr.public_key_sha256(sealed_key(pending).public_key()) == csr.public_key_sha256(
        request.public_key()
    )
    assert pending.expires_at == certs.MID_LIFE + 30 * DAY
    events = AuditEvent.objects.filter(application=frontend_app).order_by("pk")
    assert [(e.action, e.actor_label) for e in events.exclude(action="certificate_added")] == [
        ("key_generated", "otto"),
        ("csr_downloaded", "otto"),
    ]
    assert f"pending key #{pending.pk} (EC P-256) for a CSR with subject {leaf.subject}" in events[1].detail


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ("", "This field is required."),
        ("O=Example Corp,C=DE", "The subject has no common name (CN=…)."),
        (
            "CN=" + "x" * 65,
            "The subject is not a distinguished name: Attribute's length must be >= 1 and <= 64",
        ),
        ("CN=a,C=DEU", "The subject is not a distinguished name: Attribute's length must be >= 2 and <= 2"),
        ("CN=a,,O=b", "The subject is not a distinguished name"),
        ("NOPE=a", "The subject is not a distinguished name"),
        ("CN=a\nO=b", "The subject contains control characters."),
        ("CN=" + ",O=x" * 200, "Ensure this value has at most 512 characters"),
        (",".join(f"OU=u{i}" for i in range(17)) + ",CN=a", "The subject has more than 16 attributes."),
    ],
)
def test_a_subject_that_cannot_go_into_a_csr_is_refused_with_its_reason(otto, frontend_app, subject, reason):
    response = new_key(otto, frontend_app, subject=subject)

    assert response.status_code == 200
    assert reason in text_of(response)
    assert not PendingKey.objects.exists()


def test_an_application_holds_at_most_ten_pending_keys(otto, frontend_app):
    for _ in range(pending_keys.MAX_LIVE_PER_APPLICATION):
        pending_keys.create(frontend_app, subject=SUBJECT, key_type="ec-p256", actor_label="test")

    response = new_key(otto, frontend_app, subject=SUBJECT)

    assert response.status_code == 200
    assert "Frontend already has 10 pending keys: discard one first." in text_of(response)
    assert PendingKey.objects.count() == 10


# --- the certificate comes back -------------------------------------------------------------------


def test_an_uploaded_certificate_for_the_csr_is_stored_with_its_pending_key(otto, frontend_app, active):
    new_key(otto, frontend_app, subject=SUBJECT)
    pending = PendingKey.objects.get()
    item = signed(pending)

    shown, saved = upload(otto, frontend_app, item)

    assert "matches the EC P-256 key generated in the portal on 2026-06-01 12:00 UTC" in text_of(shown)
    stored = Certificate.objects.get(fingerprint=item.fingerprint)
    assert (stored.lifecycle, stored.has_private_key) == ("staged", True)
    der = keys.read_private_key(stored, actor_label="test", purpose="test")
    assert csr.public_key_sha256(serialization.load_der_private_key(der, None).public_key()) == (
        pending.public_key_sha256
    )
    assert not PendingKey.objects.exists()  # the key lives on as the certificate's, once
    assert "Certificate stored with the private key generated in the portal for its CSR." in text_of(
        otto.get(saved["Location"])
    )
    event = AuditEvent.objects.get(action="key_stored", certificate=stored)
    assert event.detail == (
        f"the pending key #{pending.pk} generated in the portal on 2026-06-01 12:00 UTC (its CSR's certificate arrived)"
    )


def test_import_certs_stores_the_key_of_a_matching_csr_and_says_has_key(frontend_app, active, tmp_path):
    pending = pending_keys.create(frontend_app, subject=SUBJECT, key_type="ec-p256", actor_label="test")
    (tmp_path / "a-from-csr.pem").write_bytes(signed(pending).pem)
    (tmp_path / "b-other.pem").write_bytes(certs.issue("other-client", key_slot=44, serial=0x4404).pem)
    out = io.StringIO()

    call_command(
        "import_certs",
        str(tmp_path),
        app="frontend",
        staged=True,
        json=True,
        stdout=out,
        stderr=io.StringIO(),
    )

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(Path(line["path"]).name, line["ok"], line["has_key"]) for line in lines] == [
        ("a-from-csr.pem", True, True),
        ("b-other.pem", True, False),
    ]
    assert not PendingKey.objects.exists()


def test_another_applications_pending_key_is_not_used(otto, frontend_app, backend_app, active):
    pending = pending_keys.create(backend_app, subject=SUBJECT, key_type="ec-p256", actor_label="test")

    upload(otto, frontend_app, signed(pending))

    assert not Certificate.objects.get(lifecycle="staged").has_private_key
    assert PendingKey.objects.filter(pk=pending.pk).exists()


# --- discard and expiry ----------------------------------------------------------------------------


def test_a_discarded_key_is_gone_and_its_certificate_comes_without_a_key(otto, owner, frontend_app, active):
    new_key(otto, frontend_app, subject=SUBJECT)
    pending = PendingKey.objects.get()

    otto.post(reverse("pending-key-discard", args=["frontend", pending.pk]))
    shown, _ = upload(otto, frontend_app, signed(pending))

    assert not PendingKey.objects.exists()
    assert "generated in the portal" not in text_of(shown)
    assert not Certificate.objects.get(lifecycle="staged").has_private_key
    event = AuditEvent.objects.get(action="key_discarded")
    assert (event.actor, event.detail) == (owner, f"pending key #{pending.pk} ({SUBJECT}) discarded")
    assert otto.get(reverse("pending-key-csr", args=["frontend", pending.pk])).status_code == 404


def test_an_expired_key_is_never_matched_and_the_worker_deletes_it(
    otto, owner, frontend_app, active, settings
):
    settings.CERTMGR_PENDING_KEY_DAYS = 30
    pending = pending_keys.create(frontend_app, subject=SUBJECT, key_type="ec-p256", actor_label="test")
    item = signed(pending, not_before=certs.MID_LIFE, not_after=certs.MID_LIFE + 400 * DAY)

    with time_machine.travel(certs.MID_LIFE + 30 * DAY + timedelta(seconds=1), tick=False):
        otto.force_login(owner)  # a login lasts hours, not a month
        page = text_of(otto.get(reverse("application-rotation", args=["frontend"])))
        shown, _ = upload(otto, frontend_app, item)
        assert PendingKey.objects.filter(pk=pending.pk).exists()  # still there: the worker has not run
        call_command("worker", "--once", stdout=io.StringIO())

    assert "No key is waiting for its certificate." in page
    assert "generated in the portal" not in text_of(shown)
    assert not Certificate.objects.get(fingerprint=item.fingerprint).has_private_key
    assert not PendingKey.objects.exists()
    event = AuditEvent.objects.get(action="key_discarded")
    assert (event.actor_label, event.detail) == (
        "worker",
        f"pending key #{pending.pk} ({SUBJECT}) expired unused on 2026-07-01 12:00 UTC",
    )


def test_a_live_key_survives_the_worker(frontend_app):
    pending = pending_keys.create(frontend_app, subject=SUBJECT, key_type="ec-p256", actor_label="test")

    with time_machine.travel(certs.MID_LIFE + 29 * DAY, tick=False):
        call_command("worker", "--once", stdout=io.StringIO())

    assert PendingKey.objects.filter(pk=pending.pk).exists()
