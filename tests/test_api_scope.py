"""Who may see and change what through the API: a token sees only its applications (everything
else is 404, as if it did not exist), a read token changes nothing, and no token does more than
its user's role allows (a viewer's write token changes nothing; an owner's only their own)."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from certmgr.api import tokens
from certmgr.api.models import ApiToken
from certmgr.models import Application, AuditEvent, Certificate, HealthCheckRun, Notice, NotificationChannel
from tests import certs
from tests.apiclient import Api, make_token, problem

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_life")]


@pytest.fixture
def world(frontend_app, store, django_user_model):
    """A = 'frontend' (Otto's), B = 'partner' (Bob's): each with an active certificate and its key,
    a staged one, a stored run, a channel and a notice."""
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "bob-pass-123")
    partner = Application.objects.create(name="Partner", slug="partner")
    partner.owners.add(bob)
    things = {"bob": bob}
    for app, slot in ((frontend_app, 3), (partner, 5)):
        active = certs.issue(f"{app.slug}-app", key_slot=slot, serial=0xB000 + slot)
        staged = certs.issue(f"{app.slug}-app", key_slot=slot + 1, serial=0xB100 + slot)
        stored_staged = store(staged.key_pem() + staged.pem, app, store_keys=True)
        stored_staged.lifecycle = Certificate.Lifecycle.STAGED
        stored_staged.save()
        channel = NotificationChannel.objects.create(application=app, kind="email", name="mail")
        things[app.slug] = {
            "app": app,
            "active": store(active.key_pem() + active.pem, app, store_keys=True),
            "staged": stored_staged,
            "run": HealthCheckRun.objects.create(application=app, trigger="manual", ok=True, steps=[]),
            "channel": channel,
            "notice": Notice.objects.create(
                application=app, channel=channel, event="test", recipient="x@example.com"
            ),
        }
    things["upload"] = certs.issue("new-app", key_slot=7, serial=0xB777)
    return things


def reads_of(thing: dict) -> list[str]:
    slug = thing["app"].slug
    return [
        f"applications/{slug}/",
        f"certificates/{thing['active'].pk}/",
        f"certificates/{thing['active'].pk}/parameters/",
        f"certificates/{thing['staged'].pk}/parameters/?format=cf",
        f"applications/{slug}/health-checks/",
        f"applications/{slug}/health-checks/{thing['run'].pk}/",
        f"applications/{slug}/channels/",
        f"applications/{slug}/channels/{thing['channel'].pk}/",
        f"applications/{slug}/notices/",
    ]


def writes_of(thing: dict, upload) -> list[tuple[str, str, dict | None]]:
    slug, channel = thing["app"].slug, thing["channel"].pk
    return [
        ("post", "certificates/", {"application": slug, "pem": upload.pem.decode(), "staged": True}),
        ("post", "certificates/", {"application": slug, "pkcs12": base64.b64encode(certs.p12(upload, b"pw")).decode(), "password": "pw"}),
        ("patch", f"certificates/{thing['active'].pk}/", {"lifecycle": "retired"}),
        ("post", f"certificates/{thing['staged'].pk}/promote/", None),
        ("post", f"applications/{slug}/health-checks/", {"certificate": str(thing["staged"].pk)}),
        ("post", f"applications/{slug}/channels/", {"kind": "email", "name": "ops", "addresses": ["o@example.com"]}),
        ("patch", f"applications/{slug}/channels/{channel}/", {"name": "renamed"}),
        ("post", f"applications/{slug}/channels/{channel}/test/", None),
        ("delete", f"applications/{slug}/channels/{channel}/", None),
    ]  # fmt: skip


def call(api: Api, method: str, path: str, body):
    return api.delete(path) if method == "delete" else getattr(api, method)(path, body)


def state() -> tuple:
    """What a refused write must leave as it was."""
    return (
        sorted(Certificate.objects.values_list("pk", "lifecycle")),
        sorted(NotificationChannel.objects.values_list("pk", "name")),
        HealthCheckRun.objects.count(),
        Notice.objects.count(),
    )


# --- a token scoped to A -------------------------------------------------------------------------


@pytest.fixture
def scoped(client, world, admin_user):
    """Ada's write token for 'frontend' only: an admin may do everything, her token no more than A."""
    return Api(client, make_token(admin_user, write=True, apps=[world["frontend"]["app"]]))


def test_a_token_for_a_lists_nothing_of_b(scoped, world):
    apps = scoped.get("applications/").json()
    certificates = scoped.get("certificates/").json()

    assert [a["slug"] for a in apps["results"]] == ["frontend"] and apps["count"] == 1
    assert {c["application"] for c in certificates["results"]} == {"frontend"}
    assert scoped.get("certificates/", {"application": "partner"}).json()["results"] == []
    assert scoped.get("certificates/", {"q": "partner"}).json()["results"] == []


def test_a_token_for_a_gets_404_for_everything_of_b_and_200_for_a(scoped, world):
    for path in reads_of(world["frontend"]):
        assert scoped.get(path).status_code == 200, path
    for path in reads_of(world["partner"]):
        response = scoped.get(path)
        assert response.status_code == 404, path
        assert problem(response)["code"] == "not_found"


def test_a_token_for_a_changes_nothing_of_b_and_learns_nothing_from_trying(scoped, world):
    before = state()

    for method, path, body in writes_of(world["partner"], world["upload"]):
        response = call(scoped, method, path, body)
        assert response.status_code == 404, (method, path, response.content)
        assert problem(response)["code"] == "not_found"

    assert state() == before
    attempts = AuditEvent.objects.filter(action=AuditEvent.Action.API_WRITE)
    assert attempts.count() == len(writes_of(world["partner"], world["upload"]))
    assert set(attempts.values_list("application", flat=True)) == {None}  # B is not named


def test_a_certificate_of_b_cannot_be_checked_through_a(scoped, world):
    response = scoped.post(
        "applications/frontend/health-checks/", {"certificate": str(world["partner"]["staged"].pk)}
    )
    by_fingerprint = scoped.post(
        "applications/frontend/health-checks/", {"certificate": world["partner"]["staged"].fingerprint}
    )

    assert response.status_code == by_fingerprint.status_code == 404
    assert HealthCheckRun.objects.count() == 2


def test_an_application_removed_from_a_tokens_list_does_not_widen_it_to_everything(client, world, admin_user):
    token = make_token(admin_user, apps=[world["frontend"]["app"]])
    world["frontend"]["app"].delete()

    api = Api(client, token)

    assert api.get("applications/").json()["results"] == []
    assert api.get("applications/partner/").status_code == 404


# --- a read token, a viewer's write token, another owner's write token ----------------------------


@pytest.mark.parametrize(
    ("who", "write", "code"),
    [
        ("owner", False, "read_only_token"),
        ("admin_user", False, "read_only_token"),
        ("viewer", True, "viewer_read_only"),
        ("bob", True, "not_an_owner"),
    ],
)
def test_a_token_never_changes_more_than_its_user_may(request, client, world, who, write, code):
    user = world["bob"] if who == "bob" else request.getfixturevalue(who)
    api = Api(client, make_token(user, write=write))
    before = state()

    for method, path, body in writes_of(world["frontend"], world["upload"]):
        response = call(api, method, path, body)
        assert response.status_code == 403, (method, path, response.content)
        assert problem(response)["code"] == code
    for path in reads_of(world["frontend"]):
        assert api.get(path).status_code == 200, path

    assert state() == before


def test_an_owner_who_loses_the_application_loses_its_writes_at_once(client, world, owner):
    api = Api(client, make_token(owner, write=True))
    assert (
        api.patch(f"certificates/{world['frontend']['active'].pk}/", {"lifecycle": "active"}).status_code
        == 200
    )

    world["frontend"]["app"].owners.remove(owner)
    # Otto owns nothing now and has no view permission: no role at all

    response = api.patch(f"certificates/{world['frontend']['active'].pk}/", {"lifecycle": "retired"})
    assert response.status_code == 403
    assert problem(response)["code"] == "no_role"


# --- tokens that no longer work -------------------------------------------------------------------


def test_an_expired_token_gets_401(client, world, owner):
    token = make_token(owner, expires_days=1)

    with time_machine.travel(certs.MID_LIFE + timedelta(days=1, seconds=1), tick=False):
        response = Api(client, token).get("applications/")

    assert response.status_code == 401
    assert problem(response)["code"] == "token_expired"
    assert response["WWW-Authenticate"] == 'Bearer realm="ias-cert-portal"'


def test_a_revoked_token_gets_401(client, world, owner):
    token = make_token(owner)
    api = Api(client, token)
    assert api.get("applications/").status_code == 200

    tokens.revoke(ApiToken.objects.get(user=owner), actor=owner)

    response = api.get("applications/")
    assert response.status_code == 401 and problem(response)["code"] == "token_revoked"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer cmp_00000000_" + "A" * 43,  # well formed, unknown
        "Bearer not-a-token",
        "Bearer ",
        "Bearer cmp_1a2b3c4d_short",
    ],
)
def test_an_unknown_or_malformed_token_gets_401(client, world, header):
    response = client.get("/api/v1/applications/", headers={"Authorization": header})

    assert response.status_code == 401 and problem(response)["code"] == "token_invalid"


def test_a_deactivated_users_token_gets_401(client, world, owner):
    token = make_token(owner)
    owner.is_active = False
    owner.save()

    response = Api(client, token).get("applications/")

    assert response.status_code == 401 and problem(response)["code"] == "token_invalid"


def test_an_ias_users_token_lapses_with_the_users_roles(client, world, owner, settings):
    from certmgr.models import ExternalIdentity

    ExternalIdentity.objects.create(
        user=owner, issuer="https://t.example", subject="otto-uuid", last_login=timezone.now()
    )
    api = Api(client, make_token(owner, expires_days=90))
    assert api.get("applications/").status_code == 200

    later = certs.MID_LIFE + timedelta(days=settings.CERTMGR_IAS_ROLE_DAYS, minutes=1)
    with time_machine.travel(later, tick=False):
        response = api.get("applications/")

    assert response.status_code == 403 and problem(response)["code"] == "no_role"
