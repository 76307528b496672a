"""The automation API and its pages × every persona, by session and by each persona's write token:
a token never lets its user do more than the role allows; anonymous calls get 401, refusals are
problem details, no answer holds key material. (Every other route: tests/test_role_matrix.py, which
leaves the API's routes to this file.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import get_resolver, reverse

from certmgr.api.models import ApiToken
from certmgr.models import Application, HealthCheckRun
from certmgr.notifications.models import NotificationChannel
from tests import certs

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "viewer", "owner_a", "owner_b", "admin", "no_role")
ALL, MANAGE, ADMIN = "any logged-in user", "A's owners and admins", "admins only"
OWNERS = "owners of any application and admins"

# The API's pages (session only): (URL name, method, who may, kwargs from the world)
PAGES = [
    ("api-tokens", "get", ALL, lambda w: {}),
    ("api-token-revoke", "post", ALL, lambda w: {"pk": w["token"].pk}),  # one's own token
    ("api-docs", "get", ALL, lambda w: {}),
    ("api-docs-script", "get", ALL, lambda w: {}),
    ("api-tokens", "post", OWNERS, lambda w: {}),  # making a token (an empty form: shown again)
]


@pytest.fixture
def world(frontend_app, owner, viewer, admin_user, django_user_model, store):
    """A = 'frontend' (Otto's, a certificate with its key, a run, a channel); B = 'partner' (Bob's)."""
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "bob-pass-123")
    partner = Application.objects.create(name="Partner", slug="partner")
    partner.owners.add(bob)
    item = certs.issue("frontend-app (P000042)", key_slot=3, serial=0xA001)
    cert_a = store(item.key_pem() + item.pem, frontend_app, store_keys=True)
    staged = certs.issue(
        "frontend-app (P000042)", key_slot=3, serial=0xA002, not_after=certs.EXPIRES + timedelta(days=90)
    )
    staged_a = store(staged.pem, frontend_app)
    staged_a.lifecycle = "staged"
    staged_a.save()
    run_a = HealthCheckRun.objects.create(application=frontend_app, trigger="manual", ok=True, steps=[])
    channel_a = NotificationChannel.objects.create(application=frontend_app, kind="email", name="mail")
    nobody = django_user_model.objects.create_user("nadia", "nadia@example.com", "nadia-pass-123")
    users = {"viewer": viewer, "owner_a": owner, "owner_b": bob, "admin": admin_user, "no_role": nobody}
    # Each persona's write token for every application: a token never lets its user do more.
    tokens = {persona: ApiToken.issue(user, name="matrix", write=True) for persona, user in users.items()}
    return {
        "cert_a": cert_a,
        "staged_a": staged_a,
        "run_a": run_a,
        "channel_a": channel_a,
        "users": users,
        "tokens": tokens,
        "token": tokens["admin"][0],
    }


def allowed(persona: str, who: str) -> bool:
    if persona == "no_role":
        return False
    if who == OWNERS:
        return persona in ("owner_a", "owner_b", "admin")
    return persona == "admin" or who == ALL or (who == MANAGE and persona == "owner_a")


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_api_pages_answer_each_persona_as_the_role_says(client, world, persona):
    if persona != "anonymous":
        client.force_login(world["users"][persona])
        world["token"] = world["tokens"][persona][0]
    wrong = []
    for name, method, who, kwargs in PAGES:
        url = reverse(name, kwargs=kwargs(world))
        response = getattr(client, method)(url)
        if persona == "anonymous":
            ok = response.status_code == 302 and response["Location"].startswith("/login/")
        elif allowed(persona, who):
            ok = response.status_code in (200, 302)
        else:
            ok = response.status_code == 403
        if not ok:
            wrong.append(f"{method.upper()} {url} ({who}): {response.status_code}")
    assert wrong == [], f"{persona}: " + "; ".join(wrong)


# --- the automation API: the same roles, with each persona's session and with their write token ----

ACCEPTED = (200, 201, 204)
# (URL name, method, who may, kwargs from the world, JSON body, other answers of an allowed call)
API_ROUTES = [
    ("api-schema", "get", ALL, lambda w: {}, None, ()),
    ("api-applications", "get", ALL, lambda w: {}, None, ()),
    ("api-application", "get", ALL, lambda w: {"slug": "frontend"}, None, ()),
    ("api-certificates", "get", ALL, lambda w: {}, None, ()),
    ("api-certificate", "get", ALL, lambda w: {"id": w["cert_a"].pk}, None, ()),
    ("api-parameters", "get", ALL, lambda w: {"id": w["cert_a"].pk}, None, ()),
    ("api-health-checks", "get", ALL, lambda w: {"slug": "frontend"}, None, ()),
    ("api-health-check", "get", ALL, lambda w: {"slug": "frontend", "id": w["run_a"].pk}, None, ()),
    ("api-channels", "get", ALL, lambda w: {"slug": "frontend"}, None, ()),
    ("api-channel", "get", ALL, lambda w: {"slug": "frontend", "id": w["channel_a"].pk}, None, ()),
    ("api-notices", "get", ALL, lambda w: {"slug": "frontend"}, None, ()),
    (
        "api-certificates",
        "post",
        MANAGE,
        lambda w: {},
        lambda w: {"application": "frontend", "pem": w["new_pem"], "staged": True},
        (),
    ),
    (
        "api-certificate",
        "patch",
        MANAGE,
        lambda w: {"id": w["cert_a"].pk},
        lambda w: {"lifecycle": "active"},
        (),
    ),
    # The staged certificate has no key: allowed, but it cannot be checked (no call leaves the machine).
    (
        "api-health-checks",
        "post",
        MANAGE,
        lambda w: {"slug": "frontend"},
        lambda w: {"certificate": str(w["staged_a"].pk)},
        (409,),
    ),
    (
        "api-channels",
        "post",
        MANAGE,
        lambda w: {"slug": "frontend"},
        lambda w: {"kind": "email", "name": "ops", "addresses": ["ops@example.com"]},
        (),
    ),
    (
        "api-channel",
        "patch",
        MANAGE,
        lambda w: {"slug": "frontend", "id": w["channel_a"].pk},
        lambda w: {"enabled": True},
        (),
    ),
    ("api-channel-test", "post", MANAGE, lambda w: {"slug": "frontend", "id": w["channel_a"].pk}, None, ()),
    ("api-promote", "post", MANAGE, lambda w: {"id": w["staged_a"].pk}, None, ()),
    # Last: it deletes what the routes above use.
    ("api-channel", "delete", MANAGE, lambda w: {"slug": "frontend", "id": w["channel_a"].pk}, None, ()),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("way", ["session", "token"])
def test_every_api_route_answers_each_persona_as_the_role_says(client, world, persona, way, mail_to_nowhere):
    headers = {}
    if persona != "anonymous" and way == "session":
        client.force_login(world["users"][persona])
    elif persona != "anonymous":
        headers = {"Authorization": f"Bearer {world['tokens'][persona][1]}"}
    world["new_pem"] = certs.issue("frontend-app (P000042)", key_slot=3, serial=0xA003).pem.decode()
    wrong = []
    with time_machine.travel(certs.MID_LIFE, tick=False):
        for name, method, who, kwargs, body, also in API_ROUTES:
            url = reverse(name, kwargs=kwargs(world))
            data = body(world) if body else None
            response = getattr(client, method)(url, data, content_type="application/json", headers=headers)
            if persona == "anonymous":
                ok = response.status_code == 401
            elif allowed(persona, who):
                ok = response.status_code in ACCEPTED + also
            else:
                ok = response.status_code == 403 and response["Content-Type"] == "application/problem+json"
            if not ok:
                wrong.append(f"{method.upper()} {url} ({who}): {response.status_code}")
            assert b"PRIVATE KEY" not in response.content, f"key material in {url} for {persona}"
    assert wrong == [], f"{persona} by {way}: " + "; ".join(wrong)


@pytest.fixture
def mail_to_nowhere(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


# Named routes that are not for the personas above: the ways in and out, the machines' feeds (own
# authentication, tests/test_feeds.py), the platform's probe, the admin site, the API's catch-all 404.
OUTSIDE_THE_MATRIX = {
    "login",
    "logout",
    "logged-out",
    "oidc_authentication_init",
    "oidc_authentication_callback",
    "metrics",
    "feed-all",
    "feed-application",
    "healthz",
    "api-not-found",
}


def test_this_matrix_lists_every_route_of_the_api():
    listed = {name for name, *_ in PAGES} | {name for name, *_ in API_ROUTES}
    named = {
        name
        for name, patterns in get_resolver().reverse_dict.lists()
        if isinstance(name, str) and name.startswith("api-") and name != "api-certificate-binding"
    }

    assert sorted(named - listed - OUTSIDE_THE_MATRIX) == []
