"""Errors as RFC 9457 problem details, and every status code the OpenAPI document promises is one
the API really gives: for each operation and each documented code, a call that gets it. Also the
per-token rate limit (429 with Retry-After)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache

from certmgr.models import Certificate, HealthCheckRun, NotificationChannel
from tests import certs
from tests.apiclient import Api, make_token, problem
from tests.test_settings import _manage, _production

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_life")]


@pytest.fixture(autouse=True)
def _fresh_counts():
    cache.clear()  # the rate limit counts in the cache
    yield
    cache.clear()


@pytest.fixture
def world(checked_app, store, django_user_model, settings):
    """'frontend' checked against the stand-in (its active certificate has its key), an expired
    certificate (IAS would refuse its parameters), a staged one without key (it cannot be checked),
    a run, an email channel (to Otto), a user without a role."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    expired = store(certs.issue(serial=0xE001, not_after=certs.MID_LIFE - timedelta(days=1)).pem)
    staged = store(certs.issue(serial=0xE002, key_slot=2).pem)
    staged.lifecycle = Certificate.Lifecycle.STAGED
    staged.save()
    return {
        "active": checked_app.certificates.get(
            lifecycle=Certificate.Lifecycle.ACTIVE, encrypted_private_key__isnull=False
        ),
        "expired": expired,
        "staged": staged,
        "run": HealthCheckRun.objects.create(application=checked_app, trigger="manual", ok=True, steps=[]),
        "channel": NotificationChannel.objects.create(application=checked_app, kind="email", name="mail"),
        "nobody": django_user_model.objects.create_user("nadia", "nadia@example.com", "nadia-pass-123"),
    }


def path_for(path: str, w: dict, status: int, operation_id: str) -> str:
    """The document's path with ids of things that exist (or, for 404, that do not)."""
    ids = {
        "certificates_parameters": w["expired" if status == 409 else "active"].pk,
        "certificates_promote": w["active" if status == 409 else "staged"].pk,
        "health_checks_retrieve": w["run"].pk,
    }
    if status == 404:
        return path.replace("{slug}", "nope").replace("{id}", "999999")
    pk = ids.get(operation_id, w["channel"].pk if "/channels/" in path else w["active"].pk)
    return path.replace("{slug}", "frontend").replace("{id}", str(pk))


BAD_BODY: list = ["an array where an object belongs"]
BODIES = {
    "certificates_upload": {
        "application": "frontend",
        "pem": certs.issue(serial=0xE003, key_slot=5).pem.decode(),
    },
    "certificates_lifecycle": {"lifecycle": "active"},
    "health_checks_run": {},
    "channels_create": {"kind": "email", "name": "ops", "addresses": ["ops@example.com"]},
    "channels_update": {"name": "renamed"},
}


def answer(client, w: dict, path: str, method: str, operation: dict, status: int):
    """A call to ``operation`` that should get ``status``."""
    operation_id = operation["operationId"]
    url = path_for(path, w, status, operation_id)
    token = make_token(w["owner"], write=True)
    headers = {"Authorization": f"Bearer {token}"}
    body = BODIES.get(operation_id)
    if status == 401:
        headers = {}
    elif status == 403:
        headers = {"Authorization": f"Bearer {make_token(w['nobody'], write=True)}"}
    elif status == 400 and method == "get":
        url += "?format=xml" if operation_id == "certificates_parameters" else "?page=0"
    elif status == 400:
        body = BAD_BODY
    elif status == 404 and operation_id == "certificates_upload":
        body = {**body, "application": "nope"}
    elif status == 404 and "{" not in path:
        url += "?page=999"  # a list's page past the last
    elif status == 413:
        body = {"application": "frontend", "pem": "A" * (4 * 1024 * 1024)}
    elif status == 429:
        client.generic(method.upper(), url, headers=headers)  # the one call a minute allowed
    if operation_id == "health_checks_run" and status == 409:
        body = {"certificate": str(w["staged"].pk)}  # no key: it cannot be checked
    if operation_id == "channels_test" and status == 409:
        w["channel"].kind = "slack"  # without its webhook URL: it cannot send
        w["channel"].save()
    data = "" if body is None else json.dumps(body)
    return client.generic(method.upper(), url, data, content_type="application/json", headers=headers)


def documented(client, owner) -> list[tuple[str, str, dict, int]]:
    document = Api(client, make_token(owner)).get("openapi.json").json()
    calls = [
        (path, method, operation, int(status))
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
    ]
    return sorted(calls, key=lambda call: call[1] == "delete")  # deleting the channel last


def test_every_documented_status_code_is_one_the_api_gives(client, world, owner, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    world["owner"] = owner
    wrong = []
    for path, method, operation, status in documented(client, owner):
        settings.CERTMGR_API_THROTTLE = "1/min" if status == 429 else ""
        cache.clear()
        response = answer(client, world, path, method, operation, status)
        if response.status_code != status:
            wrong.append(
                f"{method.upper()} {path} → {response.status_code}, not {status}: {response.content[:160]}"
            )
        elif status >= 400:
            problem(response)
    assert wrong == [], "\n".join(wrong)


def test_the_document_promises_problem_details_for_every_error(client, owner, frontend_app):
    for _, _, operation, status in documented(client, owner):
        if status >= 400:
            assert list(operation["responses"][str(status)]["content"]) == ["application/problem+json"]


# --- the rate limit ----------------------------------------------------------------------------


def test_a_token_past_its_rate_gets_429_with_retry_after_and_others_go_on(
    client, owner, viewer, frontend_app, settings
):
    settings.CERTMGR_API_THROTTLE = "3/min"
    busy, other = Api(client, make_token(owner)), Api(client, make_token(viewer))

    answers = [busy.get("applications/").status_code for _ in range(4)]
    refused = busy.get("applications/")

    assert answers == [200, 200, 200, 429]
    assert refused.status_code == 429 and problem(refused)["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert other.get("applications/").status_code == 200
    with time_machine.travel(certs.MID_LIFE + timedelta(seconds=61), tick=False):
        assert busy.get("applications/").status_code == 200


def test_the_rate_is_read_from_the_settings_and_nonsense_is_refused():
    result = _manage("check", **_production(CERTMGR_API_THROTTLE="fast"))

    assert result.returncode != 0
    assert "CERTMGR_API_THROTTLE='fast': use calls per period, e.g. 120/min" in result.stderr


# --- the rest of the problems ------------------------------------------------------------------


def test_an_unknown_path_or_method_is_a_problem_too(client, owner, frontend_app):
    api = Api(client, make_token(owner))

    nowhere = api.get("nowhere/")
    no_slash = api.post("applications")  # without a CSRF cookie, still the API's answer
    wrong_method = api.delete("applications/")

    assert nowhere.status_code == no_slash.status_code == 404
    assert problem(nowhere)["code"] == problem(no_slash)["code"] == "not_found"
    assert wrong_method.status_code == 405 and problem(wrong_method)["code"] == "method_not_allowed"
    assert wrong_method["Allow"] == "GET, HEAD, OPTIONS"


def test_a_session_changes_nothing_without_its_csrf_token(owner, frontend_app, leaf, store):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    cert = store(leaf.pem)

    response = browser.patch(
        f"/api/v1/certificates/{cert.pk}/", '{"lifecycle": "retired"}', content_type="application/json"
    )

    assert response.status_code == 403 and "CSRF" in problem(response)["detail"]
    cert.refresh_from_db()
    assert cert.lifecycle == "active"
