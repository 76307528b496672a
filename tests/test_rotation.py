"""Rotating an application to a staged certificate: the rotation page (candidates side by side,
the steps per deploy tool filled with the application's names), the promotion, and the other
credential types."""

from __future__ import annotations

import html
import json
import re
import shlex
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from certmgr.bindings import parameters as bindings
from certmgr.core.rotation_steps import TOOLS
from certmgr.models import Application, AuditEvent, Certificate, HealthCheckRun
from tests import certs

DAY = timedelta(days=1)


def text_of(response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", response.content.decode()))


def steps_of(response, tool: str) -> list[str]:
    """The commands of ``tool``'s steps on the rotation page, one string per step (empty: none)."""
    page = response.content.decode()
    section = re.search(rf'<section class="format" id="steps-{tool}".*?</section>', page, re.S)[0]
    items = re.findall(r'<li data-phase="[a-z_]+">(.*?)</li>', section, re.S)
    return [
        html.unescape("".join(re.findall(r'<code id="cmd-[^"]+">(.*?)</code>', item, re.S))) for item in items
    ]


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


@pytest.fixture
def named(frontend_app):
    """Frontend as it runs: deployed on Kyma, with its names set on the application form."""
    Application.objects.filter(pk=frontend_app.pk).update(
        deploy_tool="kyma", cf_app_name="frontend-web", cf_service_instance="frontend-ias",
        cf_binding_name="frontend-key", kyma_namespace="shop", kyma_binding_name="frontend-binding",
    )  # fmt: skip
    frontend_app.refresh_from_db()
    return frontend_app


def rotation_page(client, **query):
    return client.get(reverse("application-rotation", args=["frontend"]), query)


# --- the page --------------------------------------------------------------------------------------


def test_the_application_page_compares_the_certificate_in_use_with_the_staged_one(
    otto, frontend_app, rotation
):
    active, staged = rotation

    page = text_of(otto.get(frontend_app.get_absolute_url()))

    assert "Both valid from 2026-12-06 09:00 to 2027-01-15 09:00 UTC: rotate inside this window." in page
    assert re.search(r"Latest health check\s*not checked yet\s*not checked yet", page)
    assert page.count("Run health check with this certificate") == 2
    assert "The rotation page: the steps for cf CLI: a new service key" in page


def test_the_rotation_page_has_the_steps_of_every_tool_the_applications_own_first(otto, named, rotation):
    _, staged = rotation
    fp8 = staged.fingerprint[:8]

    response = rotation_page(otto)

    tools = re.findall(r'<section class="format" id="steps-([a-z-]+)"', response.content.decode())
    assert tools == ["kyma", *(tool for tool in TOOLS if tool != "kyma")]
    kyma = steps_of(response, "kyma")
    assert kyma[0] == (
        f"kubectl apply -n shop -f servicebinding-frontend-binding-{fp8}.yaml\n"
        f"kubectl wait -n shop servicebinding/frontend-binding-{fp8} --for=condition=Ready --timeout=5m"
    )
    assert kyma[1] == f"python manage.py healthcheck frontend --certificate {staged.fingerprint[:16]}"
    assert kyma[4] == "kubectl -n shop delete servicebinding frontend-binding"
    create = shlex.split(steps_of(response, "cf-key")[0])
    assert create[:4] == ["cf", "create-service-key", "frontend-ias", f"frontend-key-{fp8}"]
    assert json.loads(create[5]) == bindings.parameters(staged)
    assert steps_of(response, "cf-app")[0].startswith("cf unbind-service frontend-web frontend-ias\n")
    assert 'data-testid="guessed"' not in response.content.decode()  # every name set


def test_names_not_set_are_guessed_from_the_slug_and_the_page_says_which(otto, rotation):
    response = rotation_page(otto)

    assert "guessed from its slug until set there: app name, service instance, service key, namespace, " in (
        text_of(response)
    )
    assert steps_of(response, "cf-app")[0].startswith("cf unbind-service frontend frontend-ias\n")


def test_the_steps_come_with_the_order_and_the_gap_of_the_tools_that_have_one(otto, rotation):
    page = text_of(rotation_page(otto))

    assert (
        "register the new certificate → verify the new certificate → switch the application → verify → "
        "retire the old certificate"
    ) in page
    gaps = page.count("A short gap: IAS drops the old certificate with the old binding")
    assert gaps == 2  # cf-app, manifest
    assert "Both certificates are valid from 2026-12-06 09:00 to 2027-01-15 09:00 UTC: do every step" in page
    assert page.count("Window: 2026-12-06 09:00 – 2027-01-15 09:00 UTC. Order: register the new") == len(
        TOOLS
    )


def test_it_warns_when_the_two_certificates_never_overlap(otto, frontend_app, store, leaf):
    store(leaf.pem)
    late = store(certs.issue("frontend-app (P000042)", key_slot=22, serial=0x2002,
                             not_before=certs.EXPIRES + DAY, not_after=certs.EXPIRES + 400 * DAY).pem)  # fmt: skip
    Certificate.objects.filter(pk=late.pk).update(lifecycle=Certificate.Lifecycle.STAGED)

    page = text_of(otto.get(frontend_app.get_absolute_url()))

    assert "No overlap: the two certificates are never valid at the same time" in page


def test_the_steps_of_a_certificate_ias_would_refuse_need_use_anyway(otto, frontend_app, store, leaf):
    store(leaf.pem)
    early = store(certs.issue("frontend-app (P000042)", key_slot=23, serial=0x2005,
                              not_before=certs.EXPIRES - DAY, not_after=certs.EXPIRES + 400 * DAY).pem)  # fmt: skip
    Certificate.objects.filter(pk=early.pk).update(lifecycle=Certificate.Lifecycle.STAGED)

    withheld = rotation_page(otto)
    shown = rotation_page(otto, use_anyway="1")

    assert "IAS would refuse this certificate: Not valid before 2027-01-14 09:00 UTC." in text_of(withheld)
    assert 'id="steps-cf-key"' not in withheld.content.decode()
    assert "I know IAS will refuse it" in text_of(withheld)
    assert steps_of(shown, "cf-key")[0].startswith("cf create-service-key")


def test_several_candidates_each_get_their_steps_and_one_is_promoted(otto, frontend_app, rotation, store):
    active, first = rotation
    second = store(certs.issue("frontend-app (P000042)", key_slot=24, serial=0x2006,
                               not_before=certs.EXPIRES - 30 * DAY, not_after=certs.EXPIRES + 300 * DAY).pem)  # fmt: skip
    Certificate.objects.filter(pk=second.pk).update(lifecycle=Certificate.Lifecycle.STAGED)

    newest = rotation_page(otto)
    chosen = rotation_page(otto, candidate=first.pk)
    otto.post(reverse("application-promote", args=["frontend", first.pk]), {"confirm": "yes"})

    assert f"frontend-ias-key-{second.fingerprint[:8]}" in steps_of(newest, "cf-key")[0]
    assert f"frontend-ias-key-{first.fingerprint[:8]}" in steps_of(chosen, "cf-key")[0]
    assert "Promote staged certificate 1" in text_of(newest) and "Promote staged certificate 2" in text_of(
        newest
    )
    lifecycles = dict(Certificate.objects.values_list("pk", "lifecycle"))
    assert lifecycles == {active.pk: "retired", first.pk: "active", second.pk: "staged"}


# --- the promotion -----------------------------------------------------------------------------------


def test_promoting_needs_the_confirmation(otto, frontend_app, rotation):
    active, staged = rotation

    response = otto.post(reverse("application-promote", args=["frontend", staged.pk]))

    assert "Confirm that the new binding works" in text_of(otto.get(response["Location"]))
    assert Certificate.objects.get(pk=staged.pk).lifecycle == Certificate.Lifecycle.STAGED
    assert Certificate.objects.get(pk=active.pk).lifecycle == Certificate.Lifecycle.ACTIVE


def test_promoting_retires_the_old_one_and_names_the_new_key_and_binding_as_in_use(
    otto, owner, named, rotation
):
    active, staged = rotation
    fp8 = staged.fingerprint[:8]

    otto.post(reverse("application-promote", args=["frontend", staged.pk]), {"confirm": "yes"})

    assert Certificate.objects.get(pk=staged.pk).lifecycle == Certificate.Lifecycle.ACTIVE
    assert Certificate.objects.get(pk=active.pk).lifecycle == Certificate.Lifecycle.RETIRED
    named.refresh_from_db()
    assert (named.cf_binding_name, named.kyma_binding_name) == (
        f"frontend-key-{fp8}",
        f"frontend-binding-{fp8}",
    )
    events = AuditEvent.objects.filter(actor=owner).exclude(action="logged_in").order_by("pk")
    assert [(e.action, e.certificate_id, e.detail) for e in events] == [
        ("certificate_changed", staged.pk, "promoted: staged → active"),
        ("certificate_changed", active.pk, "retired by rotation"),
        ("application_changed", None, f"in use after the rotation: service key frontend-key → frontend-key-{fp8}, "
                                      f"ServiceBinding frontend-binding → frontend-binding-{fp8}"),
    ]  # fmt: skip
    page = text_of(otto.get(named.get_absolute_url()))
    assert "No rotation under way" in page


def test_a_viewer_cannot_promote(client, viewer, frontend_app, rotation):
    _, staged = rotation
    client.force_login(viewer)

    response = client.post(reverse("application-promote", args=["frontend", staged.pk]), {"confirm": "yes"})

    assert response.status_code == 403
    assert Certificate.objects.get(pk=staged.pk).lifecycle == Certificate.Lifecycle.STAGED


def test_changing_the_certificate_in_use_by_hand_forgets_the_old_ones_health(otto, frontend_app, rotation):
    active, staged = rotation
    run = HealthCheckRun.objects.create(
        application=frontend_app, certificate=active, trigger="manual", ok=True
    )
    Application.objects.filter(pk=frontend_app.pk).update(last_check=run)

    otto.post(reverse("certificate-lifecycle", args=[active.pk]), {"lifecycle": "retired"})
    otto.post(reverse("certificate-lifecycle", args=[staged.pk]), {"lifecycle": "active"})

    frontend_app.refresh_from_db()
    assert frontend_app.last_check is None and frontend_app.next_check_at == certs.TWENTY_DAYS_BEFORE_EXPIRY
    assert "not checked with the new certificate yet" in text_of(otto.get(frontend_app.get_absolute_url()))


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
    page = otto.get(frontend_app.get_absolute_url())
    assert 'data-testid="rotation-compare"' in page.content.decode()


# --- other credential types -------------------------------------------------------------------------


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
