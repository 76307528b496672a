"""Rotating an application to its staged certificate, and the other credential types."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from certmgr.bindings import parameters as bindings
from certmgr.models import AuditEvent, Certificate
from tests import certs

DAY = timedelta(days=1)


def text_of(response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", response.content.decode()))


@pytest.fixture
def otto(client, owner):
    with time_machine.travel(certs.TWENTY_DAYS_BEFORE_EXPIRY, tick=False):
        client.force_login(owner)
        yield client


@pytest.fixture
def rotation(frontend_app, store, leaf):
    """Frontend's active certificate expires in 20 days; its successor is staged."""
    active = store(leaf.pem)
    successor = certs.issue(
        "frontend-app (P000042)", key_slot=21, serial=0x2001,
        not_before=certs.EXPIRES - 40 * DAY, not_after=certs.EXPIRES + 365 * DAY,
    )  # fmt: skip
    staged = store(successor.pem)
    Certificate.objects.filter(pk=staged.pk).update(lifecycle=Certificate.Lifecycle.STAGED)
    return active, Certificate.objects.get(pk=staged.pk)


def test_the_application_page_shows_the_overlap_window_the_steps_and_the_new_parameters(
    otto, frontend_app, rotation
):
    _, staged = rotation

    page = text_of(otto.get(frontend_app.get_absolute_url()))

    assert "Both are valid from 2026-12-06 09:00 to 2027-01-15 09:00 UTC" in page
    steps = re.findall(
        r"(Create a new binding|Verify it with the health check|Restage or restart|Verify again|Remove the old)",
        page,
    )
    assert steps == [
        "Create a new binding",
        "Verify it with the health check",
        "Restage or restart",
        "Verify again",
        "Remove the old",
    ]
    cf_block = bindings.rendered(
        staged, "cf", target=bindings.binding.Target(app="frontend", key_name="frontend-next")
    )
    assert cf_block.strip() in page


def test_it_warns_when_the_two_certificates_never_overlap(otto, frontend_app, store, leaf):
    store(leaf.pem)
    late = store(certs.issue("frontend-app (P000042)", key_slot=22, serial=0x2002,
                             not_before=certs.EXPIRES + DAY, not_after=certs.EXPIRES + 400 * DAY).pem)  # fmt: skip
    Certificate.objects.filter(pk=late.pk).update(lifecycle=Certificate.Lifecycle.STAGED)

    page = text_of(otto.get(frontend_app.get_absolute_url()))

    assert "No overlap: the two certificates are never valid at the same time" in page


def test_promoting_needs_the_confirmation(otto, frontend_app, rotation):
    active, staged = rotation

    response = otto.post(reverse("application-promote", args=["frontend", staged.pk]))

    assert "Confirm that the new binding works" in text_of(otto.get(response["Location"]))
    assert Certificate.objects.get(pk=staged.pk).lifecycle == Certificate.Lifecycle.STAGED
    assert Certificate.objects.get(pk=active.pk).lifecycle == Certificate.Lifecycle.ACTIVE


def test_promoting_makes_the_staged_certificate_active_and_retires_the_old_one(
    otto, owner, frontend_app, rotation
):
    active, staged = rotation

    otto.post(reverse("application-promote", args=["frontend", staged.pk]), {"confirm": "yes"})

    assert Certificate.objects.get(pk=staged.pk).lifecycle == Certificate.Lifecycle.ACTIVE
    assert Certificate.objects.get(pk=active.pk).lifecycle == Certificate.Lifecycle.RETIRED
    events = AuditEvent.objects.filter(action=AuditEvent.Action.CERTIFICATE_CHANGED, actor=owner)
    assert {(e.certificate_id, e.detail) for e in events} == {
        (staged.pk, "promoted: staged → active"),
        (active.pk, "retired by rotation"),
    }
    assert "Rotation to the staged certificate" not in text_of(otto.get(frontend_app.get_absolute_url()))


def test_a_viewer_cannot_promote(client, viewer, frontend_app, rotation):
    _, staged = rotation
    client.force_login(viewer)

    response = client.post(reverse("application-promote", args=["frontend", staged.pk]), {"confirm": "yes"})

    assert response.status_code == 403
    assert Certificate.objects.get(pk=staged.pk).lifecycle == Certificate.Lifecycle.STAGED


def credential_block(client, app, **query) -> tuple[str, str]:
    response = client.get(reverse("application-credential-types", args=[app.slug]), query)
    match = re.search(r'data-testid="credential-block"><code>(.*?)</code>', response.content.decode(), re.S)
    return (html.unescape(match.group(1)) if match else ""), text_of(response)


def test_x509_generated_parameters_follow_the_form(otto, frontend_app):
    block, _ = credential_block(otto, frontend_app, credential_type="X509_GENERATED", key_length=4096,
                                validity=30, app_identifier="frontend-eu10", format="json")  # fmt: skip

    assert json.loads(block) == {
        "credential-type": "X509_GENERATED", "key-length": 4096, "validity": 30,
        "validity-type": "DAYS", "app-identifier": "frontend-eu10",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("validity", 31, "validity must be 1 to 30"), ("validity", 0, "validity must be 1 to 30"),
     ("app_identifier", "x" * 21, "app-identifier must be at most 20 characters")],
)  # fmt: skip
def test_x509_generated_parameters_are_checked_against_iass_limits(otto, frontend_app, field, value, message):
    query = {
        "credential_type": "X509_GENERATED",
        "key_length": 2048,
        "validity": 30,
        "format": "json",
        field: value,
    }

    block, page = credential_block(otto, frontend_app, **query)

    assert block == ""
    assert message in page


def test_secret_parameters(otto, frontend_app):
    block, _ = credential_block(
        otto, frontend_app, credential_type="SECRET", key_length=2048, validity=30, format="json"
    )

    assert json.loads(block) == {"credential-type": "SECRET"}


def test_a_certificate_uploaded_as_staged_offers_the_rotation(otto, frontend_app, store, leaf):
    store(leaf.pem)
    successor = certs.issue("frontend-app (P000042)", key_slot=23, serial=0x2003,
                            not_before=certs.EXPIRES - 40 * DAY, not_after=certs.EXPIRES + 365 * DAY)  # fmt: skip
    data = {
        "step": "preview",
        "application": frontend_app.pk,
        "text": successor.pem.decode(),
        "lifecycle": "staged",
    }

    shown = otto.post(reverse("upload"), data)
    assert "Stored as: staged for rotation" in text_of(shown)
    otto.post(reverse("upload"), {"step": "confirm", "token": shown.context["token"]})

    stored = Certificate.objects.get(fingerprint=successor.fingerprint)
    assert stored.lifecycle == Certificate.Lifecycle.STAGED
    assert "Rotation to the staged certificate" in text_of(otto.get(frontend_app.get_absolute_url()))


def test_import_certs_can_stage_what_it_imports(frontend_app, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    successor = certs.issue("frontend-app (P000042)", key_slot=24, serial=0x2004)
    (tmp_path / "next.pem").write_bytes(successor.pem)

    call_command(
        "import_certs", str(tmp_path), app="frontend", staged=True, stdout=StringIO(), stderr=StringIO()
    )

    assert (
        Certificate.objects.get(fingerprint=successor.fingerprint).lifecycle == Certificate.Lifecycle.STAGED
    )
