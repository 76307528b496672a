"""Error-level pre-flight results stop the parameters: the certificate page lists the errors above
the blocks and shows Copy and Download only after "use anyway"; a download or the JSON answer
without that confirmation is refused (409). The upload preview shows the checks before saving.
All through the one gate, bindings.parameters.blocking_checks."""

from __future__ import annotations

import html
import re

import pytest
import time_machine
from django.urls import reverse

from certmgr.bindings import parameters as bindings
from certmgr.models import AuditEvent
from tests import certs

pytestmark = pytest.mark.django_db


def text_of(response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", response.content.decode()))


@pytest.fixture
def expired(store, leaf, otto, owner):
    """The standard certificate, looked at (by Otto) three days after it expired."""
    cert = store(leaf.pem)
    with time_machine.travel(certs.AFTER_EXPIRY, tick=False):
        otto.force_login(owner)  # a login of the real today would have lapsed by then
        yield cert


def page(client, cert, **query):
    return client.get(reverse("certificate", args=[cert.pk]), query)


def test_the_gate_is_the_error_level_checks(expired, leaf):
    assert [c.rule for c in bindings.blocking_checks(expired)] == ["validity"]
    with time_machine.travel(certs.MID_LIFE, tick=False):
        assert bindings.blocking_checks(expired) == []


def test_the_page_lists_the_errors_above_and_withholds_the_blocks(otto, expired):
    response = page(otto, expired)

    body = response.content.decode()
    assert "IAS would refuse this certificate (1 error): Expired on 2027-01-15 09:00 UTC. validity" in (
        " ".join(text_of(response).split())
    )
    assert 'data-copy="code-' not in body and "/binding.json" not in body  # no Copy, no Download
    assert body.index('data-testid="binding-errors"') > body.index('id="checks-title"')
    assert 'name="use_anyway" value="1" id="binding-use-anyway" required' in body


def test_use_anyway_shows_copy_and_download_and_keeps_the_error_in_view(otto, expired):
    response = page(otto, expired, use_anyway="1", cf_target="app")

    body = response.content.decode()
    assert body.count('data-copy="code-') == 7
    assert f'href="/certificates/{expired.pk}/binding.cf?cf_target=app&amp;use_anyway=1"' in body
    assert "Shown anyway, as you confirmed" in text_of(response)
    download = otto.get(
        reverse("certificate-binding", args=[expired.pk, "cf"]), {"cf_target": "app", "use_anyway": "1"}
    )
    assert download.status_code == 200 and "cf bind-service" in download.content.decode()


def test_a_download_without_the_confirmation_is_refused_and_not_audited(otto, expired):
    response = otto.get(reverse("certificate-binding", args=[expired.pk, "json"]))

    assert response.status_code == 409
    assert response.content.decode() == (
        "IAS would refuse this certificate:\n"
        "error: validity: Expired on 2027-01-15 09:00 UTC.\n"
        'Confirm on the certificate page ("use anyway") to download it regardless (use_anyway=1).\n'
    )
    assert not AuditEvent.objects.filter(action="parameters_generated").exists()


def test_the_json_answer_is_409_unless_forced(otto, expired):
    url = reverse("api-parameters", args=[expired.pk])  # the old JSON path redirects here

    refused = otto.get(url)
    forced = otto.get(url, {"force": "true"})

    assert refused.status_code == 409 and refused["Content-Type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "preflight_error" and "parameters" not in problem
    assert [c for c in problem["checks"] if c["level"] == "error"] == [
        {"rule": "validity", "level": "error", "message": "Expired on 2027-01-15 09:00 UTC."}
    ]
    assert forced.status_code == 200 and forced.json()["parameters"] == bindings.parameters(expired)
    assert forced.json()["forced"] is True


def test_a_certificate_with_warnings_only_is_not_held_back(otto, owner, store, leaf):
    cert = store(leaf.pem)
    with time_machine.travel(certs.TWENTY_DAYS_BEFORE_EXPIRY, tick=False):
        otto.force_login(owner)
        body = page(otto, cert).content.decode()

    assert 'data-testid="binding-errors"' not in body and body.count('data-copy="code-') == 7


def test_the_upload_preview_shows_the_checks_before_anything_is_saved(otto, owner, frontend_app, leaf):
    with time_machine.travel(certs.AFTER_EXPIRY, tick=False):
        otto.force_login(owner)
        response = otto.post(reverse("upload"), {"application": frontend_app.pk, "text": leaf.pem.decode()})

    listed = re.findall(
        r'<li class="check check-(\w+)" data-rule="(\w+)">.*?<span class="check-message">(.*?)</span>',
        response.content.decode(),
        re.S,
    )
    assert ("error", "validity", "Expired on 2027-01-15 09:00 UTC.") in listed
    assert {rule for _, rule, _ in listed} >= {"validity", "tenant_unique", "trusted_ca"}
    assert "Nothing is saved yet." in text_of(response)
