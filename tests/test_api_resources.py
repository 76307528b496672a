"""The API's resources as a pipeline uses them: the pages' filters, uploads through the one storing
path with the upload page's reasons, the binding parameters with their pre-flight gate, lifecycle
and promotion, health checks against the local IAS stand-in, channels through the channel form."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from certmgr.bindings import parameters as bindings
from certmgr.core.binding import FORMATS, Target
from certmgr.core.errors import InputError
from certmgr.core.parse import parse_certificate_input
from certmgr.models import Application, AuditEvent, Certificate, HealthCheckRun, Notice, NotificationChannel
from tests import certs
from tests.apiclient import Api, make_token, problem

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_life")]
HOOK_SECRET = "webhook-signing-secret-0123456789"


@pytest.fixture
def api(client, owner, frontend_app):
    """Otto's write token, for every application he may see."""
    return Api(client, make_token(owner, write=True))


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# --- lists with the pages' filters -------------------------------------------------------------


@pytest.fixture
def spread(store, frontend_app, backend_app):
    """Certificates in every state at MID_LIFE, in two applications, one retired, one staged."""
    made = {
        "valid": certs.issue("valid-app", serial=0xC001),
        "expiring": certs.issue("expiring-app", serial=0xC002, not_after=certs.MID_LIFE + timedelta(days=10)),
        "expired": certs.issue("expired-app", serial=0xC003, not_after=certs.MID_LIFE - timedelta(days=1)),
        "future": certs.issue("future-app", serial=0xC004, not_before=certs.MID_LIFE + timedelta(days=5)),
        "retired": certs.issue("retired-app", serial=0xC005),
        "staged": certs.issue("staged-app", serial=0xC006),
    }
    stored = {
        name: store(item.pem, backend_app if name == "future" else frontend_app)
        for name, item in made.items()
    }
    for name in ("retired", "staged"):
        stored[name].lifecycle = name
        stored[name].save()
    return stored


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?state=expiring",
        "?state=expired",
        "?state=not_yet_valid",
        "?state=valid&lifecycle=active",
        "?lifecycle=staged",
        "?application=backend",
        "?q=expir",
        "?sort=-expiry",
        "?q=frontend&sort=-expiry&state=valid",
    ],
)
def test_the_certificate_filters_find_what_the_certificate_list_shows(otto, api, spread, query):
    page = otto.get(reverse("certificates") + query).content.decode()
    shown = [int(pk) for pk in re.findall(r'href="/certificates/(\d+)/"', page)]

    assert ids(api.get("certificates/" + query)) == list(dict.fromkeys(shown))


def test_applications_come_next_expiry_first_with_search_and_expiring_soon(
    api, spread, frontend_app, backend_app
):
    Application.objects.create(name="Empty", slug="empty")

    every = api.get("applications/").json()["results"]
    soon = api.get("applications/", {"expiring_within": "30"}).json()["results"]
    found = api.get("applications/", {"q": "back"}).json()["results"]

    assert [a["slug"] for a in every] == ["frontend", "backend", "empty"]
    front = every[0]
    assert (front["next_expiry_state"], front["days_left"], front["active_certificates"]) == (
        "expired",
        -1,
        3,
    )
    assert (front["writable"], every[1]["writable"]) == (True, False)  # Otto owns frontend only
    assert [a["slug"] for a in soon] == ["frontend"]
    assert [a["slug"] for a in found] == ["backend"]


@pytest.mark.parametrize(
    "query",
    [
        "?state=soon",
        "?lifecycle=gone",
        "?sort=name",
        "?page=0",
        "?page_size=500",
        "?state=valid&state=expired",
    ],
)
def test_a_filter_that_makes_no_sense_is_a_problem_not_a_guess(api, spread, query):
    response = api.get("certificates/" + query)

    assert response.status_code == 400 and problem(response)["code"] == "invalid_request"


# --- uploads -----------------------------------------------------------------------------------


def test_a_pem_uploads_as_active_and_answers_its_facts_and_pre_flight(api, leaf, owner):
    response = api.post("certificates/", {"application": "frontend", "pem": leaf.pem.decode()})

    assert response.status_code == 201
    body = response.json()
    cert = Certificate.objects.get()
    assert body["certificate"]["id"] == cert.pk and body["certificate"]["fingerprint"] == leaf.fingerprint
    assert (cert.lifecycle, cert.uploaded_by, body["already_present"], body["key_stored"]) == (
        "active",
        owner,
        False,
        False,
    )
    assert {c["rule"]: c["level"] for c in body["checks"]}["trusted_ca"] == "warning"  # self-signed
    again = api.post("certificates/", {"application": "frontend", "pem": leaf.pem.decode()})
    assert again.status_code == 200 and again.json()["already_present"] is True


def test_a_pkcs12_uploads_staged_with_its_key_only_when_asked(api, leaf):
    p12 = base64.b64encode(certs.p12(leaf, b"p12-pass")).decode()

    without = api.post(
        "certificates/", {"application": "frontend", "pkcs12": p12, "password": "p12-pass", "staged": True}
    )
    cert = Certificate.objects.get()
    assert without.status_code == 201 and without.json()["key_discarded"] is True
    assert (cert.lifecycle, cert.has_private_key) == ("staged", False)

    kept = api.post(
        "certificates/",
        {"application": "frontend", "pkcs12": p12, "password": "p12-pass", "store_private_key": True},
    )
    cert.refresh_from_db()
    assert kept.json()["key_stored"] is True and cert.has_private_key


def upload_refusal(data: bytes, password: str | None) -> InputError:
    with pytest.raises(InputError) as refused:
        parse_certificate_input(data, password)
    return refused.value


@pytest.mark.parametrize(
    ("make", "password"),
    [
        (lambda leaf: certs.p12(leaf, b"right"), "wrong"),
        (lambda leaf: certs.p12(leaf, b"right"), None),
        (lambda leaf: b"-----BEGIN CERTIFICATE-----\nMIIB\n", None),
        (lambda leaf: certs.issue(key_slot=9).key_pem() + leaf.pem, None),
        (lambda leaf: b"hello", None),
    ],
    ids=["wrong password", "password missing", "truncated", "key does not match", "not a certificate"],
)
def test_a_refused_upload_has_the_upload_pages_reason(api, leaf, make, password):
    data = make(leaf)
    expected = upload_refusal(data, password)
    body = {"application": "frontend", "pkcs12": base64.b64encode(data).decode()}
    if password is not None:
        body["password"] = password

    response = api.post("certificates/", body)

    assert response.status_code == 400
    assert (problem(response)["code"], problem(response)["detail"]) == (expected.code, expected.message)
    assert not Certificate.objects.exists()


def test_a_certificate_of_another_application_of_the_tenant_is_refused_naming_it(
    api, store, leaf, backend_app
):
    store(leaf.pem, backend_app)

    response = api.post("certificates/", {"application": "frontend", "pem": leaf.pem.decode()})

    assert response.status_code == 400
    assert problem(response)["code"] == "tenant_conflict"
    assert "already used by application 'Backend' (backend)" in problem(response)["detail"]


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        ({"application": "frontend", "pkcs12": "not base64!"}, "bad_base64", "pkcs12 is not base64"),
        ({"application": "frontend"}, "invalid_request", "Give either pem or pkcs12."),
        (
            {"application": "frontend", "pem": "x", "pkcs12": "eA=="},
            "invalid_request",
            "Give either pem or pkcs12.",
        ),
        ({"application": "frontend", "pem": 42}, "invalid_request", "pem: Not a valid string."),
        (
            {"application": "frontend", "pem": "x", "staged": "yes"},
            "invalid_request",
            "staged: Must be true or false.",
        ),
    ],
)
def test_a_malformed_upload_is_named(api, body, code, detail):
    response = api.post("certificates/", body)

    assert response.status_code == 400
    assert problem(response)["code"] == code and problem(response)["detail"].startswith(detail)


def test_an_oversized_body_is_refused_before_it_is_read_whole(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = api.post("certificates/", {"application": "frontend", "pem": "A" * 2000})

    assert response.status_code == 413 and problem(response)["code"] == "too_large"


def test_a_body_that_is_not_json_is_named(api):
    response = api.client.post(
        "/api/v1/certificates/", "{not json", content_type="application/json", headers=api.headers
    )
    form = api.client.post("/api/v1/certificates/", {"application": "frontend"}, headers=api.headers)

    assert response.status_code == 400 and problem(response)["code"] == "malformed_request"
    assert form.status_code == 415 and problem(form)["code"] == "unsupported_media_type"


# --- lifecycle, parameters, promotion ----------------------------------------------------------


def test_a_lifecycle_change_is_audited_with_the_token(api, store, leaf, owner):
    cert = store(leaf.pem)

    response = api.patch(f"certificates/{cert.pk}/", {"lifecycle": "retired"})

    assert response.status_code == 200 and response.json()["lifecycle"] == "retired"
    change = AuditEvent.objects.get(action=AuditEvent.Action.CERTIFICATE_CHANGED)
    token = owner.api_tokens.get()
    assert (change.actor, change.actor_label, change.detail) == (
        owner,
        f"otto (API token {token.prefix})",
        "lifecycle active → retired",
    )
    [write] = AuditEvent.objects.filter(action=AuditEvent.Action.API_WRITE)
    assert (
        write.detail == f"PATCH /api/v1/certificates/{cert.pk}/ → 200"
        and write.application.slug == "frontend"
    )


def test_the_parameters_in_every_format_are_the_certificate_pages(api, chained):
    cert, _ = chained
    target = Target(instance="ias-prod", app="shop", key_name="ci-key")

    for fmt in FORMATS:
        body = api.get(
            f"certificates/{cert.pk}/parameters/",
            {"format": fmt, "chain": "true", "instance": "ias-prod", "app": "shop", "key": "ci-key"},
        ).json()
        assert body["rendered"] == bindings.rendered(cert, fmt, chain=True, target=target)
        assert body["parameters"] == bindings.parameters(cert, chain=True)
        assert body["checks"] == [
            {"rule": c.rule, "level": c.level, "message": c.message} for c in bindings.checks(cert)
        ]
        assert body["forced"] is False


@pytest.mark.parametrize(
    ("issued", "rule"),
    [
        (lambda: certs.issue(serial=0xD001, not_after=certs.MID_LIFE - timedelta(days=1)), "validity"),
        (lambda: certs.issue(serial=0xD002, not_before=certs.MID_LIFE + timedelta(days=1)), "validity"),
    ],
    ids=["expired", "not yet valid"],
)
def test_an_error_level_pre_flight_result_holds_the_parameters_back_unless_forced(api, store, issued, rule):
    cert = store(issued().pem)
    url = f"certificates/{cert.pk}/parameters/"

    refused = api.get(url, {"format": "cf"})
    forced = api.get(url, {"format": "cf", "force": "true"})

    assert refused.status_code == 409
    body = problem(refused)
    assert body["code"] == "preflight_error" and "parameters" not in body and "rendered" not in body
    failing = [c for c in body["checks"] if c["level"] == "error"]
    assert [c["rule"] for c in failing] == [rule]
    assert body["detail"].startswith("IAS would refuse this certificate: " + failing[0]["message"])
    assert forced.status_code == 200 and forced.json()["forced"] is True
    assert forced.json()["rendered"] == bindings.rendered(cert, "cf")
    [audit] = AuditEvent.objects.filter(action=AuditEvent.Action.PARAMETERS_GENERATED)
    assert audit.detail == "cf via the API despite pre-flight errors (force)"


def test_promotion_makes_the_staged_certificate_active_and_retires_the_old(api, store, leaf):
    old = store(leaf.pem)
    new = store(certs.issue(serial=0xD010, key_slot=2).pem)
    new.lifecycle = "staged"
    new.save()

    response = api.post(f"certificates/{new.pk}/promote/")
    again = api.post(f"certificates/{new.pk}/promote/")

    assert response.status_code == 200
    assert response.json()["certificate"]["lifecycle"] == "active" and response.json()["retired"] == [old.pk]
    old.refresh_from_db()
    assert old.lifecycle == "retired"
    assert again.status_code == 409 and problem(again)["code"] == "not_staged"


# --- health checks against the stand-in --------------------------------------------------------


def test_a_health_check_runs_now_with_the_certificate_in_use_or_a_chosen_one(
    api, checked_app, staged_cert, client_cert
):
    in_use = api.post("applications/frontend/health-checks/")
    staged = api.post("applications/frontend/health-checks/", {"certificate": staged_cert.fingerprint[:12]})

    assert in_use.status_code == staged.status_code == 201
    assert in_use.json()["ok"] and in_use.json()["fingerprint"] == client_cert.fingerprint
    assert staged.json()["ok"] and staged.json()["certificate"] == staged_cert.pk
    assert [s["name"] for s in staged.json()["steps"]] == [
        "discovery",
        "token",
        "token_validation",
        "backend",
    ]
    checked_app.refresh_from_db()
    assert checked_app.last_check_id == in_use.json()["id"]  # the staged run is not the app's health
    assert checked_app.certificates.get(lifecycle="active").fingerprint == client_cert.fingerprint
    listed = api.get("applications/frontend/health-checks/").json()
    assert [r["id"] for r in listed["results"]] == [staged.json()["id"], in_use.json()["id"]]
    assert api.get(f"applications/frontend/health-checks/{staged.json()['id']}/").json() == staged.json()


def test_a_health_check_that_cannot_run_says_why(api, store, leaf, frontend_app):
    store(leaf.pem)  # no key

    response = api.post("applications/frontend/health-checks/")

    assert response.status_code == 409 and problem(response)["code"] == "not_checkable"
    assert "No active certificate with a stored private key" in problem(response)["detail"]
    assert not HealthCheckRun.objects.exists()


# --- channels and notices ----------------------------------------------------------------------


def test_channels_are_made_changed_tested_and_deleted_with_the_forms_rules(api, frontend_app, webhook, owner):
    hook = webhook.url + "/notices"
    made = api.post(
        "applications/frontend/channels/",
        {"kind": "webhook", "name": "ops", "url": hook, "secret": HOOK_SECRET},
    )
    assert made.status_code == 201, made.content
    pk = made.json()["id"]
    renamed = api.patch(f"applications/frontend/channels/{pk}/", {"name": "ops hook", "enabled": False})
    tested = api.post(f"applications/frontend/channels/{pk}/test/")
    listed = api.get("applications/frontend/channels/")
    gone = api.delete(f"applications/frontend/channels/{pk}/")

    assert made.json()["summary"] == "URL set (host localhost), signing secret set"
    assert (renamed.json()["name"], renamed.json()["enabled"]) == ("ops hook", False)
    assert tested.status_code == 200 and tested.json() == {"recipients": 1, "sent": 1, "failed": []}
    assert [d.path for d in webhook.deliveries] == ["/notices"]
    assert [c["name"] for c in listed.json()] == ["ops hook"]
    assert gone.status_code == 204 and not NotificationChannel.objects.exists()
    answers = b"".join(r.content for r in (made, renamed, tested, listed))
    assert HOOK_SECRET.encode() not in answers and b"/notices" not in answers
    details = list(
        AuditEvent.objects.filter(action__in=["channel_changed", "channel_tested"])
        .order_by("pk")
        .values_list("detail", flat=True)
    )
    assert details == [
        "webhook channel 'ops' created",
        "webhook channel 'ops hook' changed: name 'ops' → 'ops hook', enabled on → off",
        "test notice through webhook channel 'ops hook': sent to 1 of 1",
        "webhook channel 'ops hook' deleted",
    ]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"kind": "webhook", "name": "h", "url": "http://hooks.example.net/in", "secret": HOOK_SECRET},
            "url",
            "Only https URLs are allowed",
        ),
        (
            {"kind": "webhook", "name": "h", "url": "https://hooks.example.net/in"},
            "secret",
            "Give a signing secret",
        ),
        (
            {"kind": "webhook", "name": "h", "url": "https://hooks.example.net/in", "secret": "short"},
            "secret",
            "Use at least 16 characters",
        ),
        (
            {"kind": "email", "name": "m", "addresses": ["ok@example.com", "not-an-address"]},
            "addresses",
            "Not an email address: not-an-address",
        ),
        (
            {
                "kind": "alert_notification",
                "name": "a",
                "url": "https://ans.example.net",
                "token_url": "https://t.example.net/oauth/token",
                "client_id": "c",
            },
            "client_secret",
            "This field is required.",
        ),
    ],
)
def test_a_channel_the_form_refuses_is_a_problem_with_the_forms_reason(
    api, frontend_app, body, field, message
):
    response = api.post("applications/frontend/channels/", body)

    assert response.status_code == 400
    assert problem(response)["errors"][field][0].startswith(message)
    assert "hooks.example.net" not in response.content.decode()
    assert not NotificationChannel.objects.exists()


def test_a_channel_that_cannot_send_refuses_the_test_notice(api, frontend_app):
    row = NotificationChannel.objects.create(application=frontend_app, kind="slack", name="broken")

    response = api.post(f"applications/frontend/channels/{row.pk}/test/")

    assert response.status_code == 409 and problem(response)["code"] == "test_refused"
    assert (
        "The channel lacks" in problem(response)["detail"] or "no stored url" in problem(response)["detail"]
    )


def test_notices_are_listed_newest_first_with_their_state(api, frontend_app):
    channel = NotificationChannel.objects.create(application=frontend_app, kind="email", name="mail")
    sent = Notice.objects.create(
        application=frontend_app, channel=channel, event="test", recipient="a@example.com", state="sent"
    )
    failed = Notice.objects.create(
        application=frontend_app,
        channel=channel,
        event="test",
        recipient="b@example.com",
        state="failed",
        last_error="550 no such user",
    )

    every = api.get("applications/frontend/notices/").json()["results"]
    only_failed = api.get("applications/frontend/notices/", {"state": "failed"}).json()["results"]

    assert [n["id"] for n in every] == [failed.pk, sent.pk]
    assert [(n["id"], n["last_error"], n["channel_name"]) for n in only_failed] == [
        (failed.pk, "550 no such user", "mail")
    ]


def test_days_left_and_states_follow_the_clock_as_on_the_pages(client, owner, leaf, store):
    cert = store(leaf.pem)
    api = Api(client, make_token(owner, expires_days=366))
    with time_machine.travel(certs.TWENTY_DAYS_BEFORE_EXPIRY, tick=False):
        body = api.get(f"certificates/{cert.pk}/").json()
    assert (body["expiry_state"], body["days_left"]) == ("expiring", 20)
