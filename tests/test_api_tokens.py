"""API tokens: made on the "API tokens" page by owners and admins, or with manage.py api_token;
shown once, stored as a hash with a recognisable prefix; revocable; last use recorded at most once
a minute; making and revoking audited."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from certmgr.api.models import ApiToken, token_digest
from certmgr.models import AuditEvent
from tests import certs
from tests.apiclient import Api, make_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_life")]
TOKEN = re.compile(r"cmp_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def dump() -> str:
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    return out.getvalue()


# --- the page ----------------------------------------------------------------------------------


def test_an_owner_makes_a_token_on_the_page_and_sees_it_once(otto, frontend_app, owner):
    response = otto.post(
        reverse("api-tokens"),
        {"name": "deploy shop", "applications": "frontend", "write": "on", "expires_days": "30"},
    )

    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    [token] = TOKEN.findall(response.content.decode())
    row = ApiToken.objects.get()
    assert (row.user, row.name, row.write, row.all_applications) == (owner, "deploy shop", True, False)
    assert list(row.applications.all()) == [frontend_app]
    assert row.expires_at == certs.MID_LIFE + timedelta(days=30)
    assert row.digest == token_digest(token) and token.startswith(row.prefix + "_")
    assert token not in dump()  # only its hash is kept
    again = otto.get(reverse("api-tokens")).content.decode()
    assert token not in again and f"{row.prefix}…" in again
    assert Api(otto, token).get("applications/frontend/").status_code == 200
    [made] = AuditEvent.objects.filter(action=AuditEvent.Action.API_TOKEN_CREATED)
    assert made.actor == owner
    assert made.detail == f"{row.prefix} 'deploy shop': write, frontend, expires 2026-07-01 (for otto, owner)"
    assert token not in made.detail


def test_a_viewer_may_not_make_a_token_on_the_page(vera, viewer):
    page = vera.get(reverse("api-tokens"))
    refused = vera.post(reverse("api-tokens"), {"name": "mine", "expires_days": "30"})

    assert (
        page.status_code == 200
        and "Tokens are made by the owners of applications and by admins" in page.content.decode()
    )
    assert refused.status_code == 403
    assert not ApiToken.objects.exists()


def test_the_form_names_what_is_wrong(otto):
    response = otto.post(reverse("api-tokens"), {"name": "", "expires_days": "400"})

    text = response.content.decode()
    assert "This field is required." in text and "less than or equal to 366" in text
    assert not ApiToken.objects.exists()


def test_revoking_on_the_page_ends_the_token_and_is_audited(otto, owner, frontend_app):
    token = make_token(owner)
    row = ApiToken.objects.get()

    response = otto.post(reverse("api-token-revoke", args=[row.pk]))

    assert response.status_code == 302
    assert Api(otto.__class__(), token).get("applications/").status_code == 401
    [revoked] = AuditEvent.objects.filter(action=AuditEvent.Action.API_TOKEN_REVOKED)
    assert (revoked.actor, revoked.detail) == (owner, f"{row.prefix} 'ci' of otto")
    assert "revoked" in otto.get(reverse("api-tokens")).content.decode()


def test_nobody_revokes_someone_elses_token(vera, owner):
    make_token(owner)

    response = vera.post(reverse("api-token-revoke", args=[ApiToken.objects.get().pk]))

    assert response.status_code == 404
    assert ApiToken.objects.get().revoked_at is None


# --- the command -------------------------------------------------------------------------------


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("api_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_prints_the_token_once_on_its_last_line(owner, frontend_app):
    out, _ = run("--user", "otto", "--app", "frontend", "--write", "--expires-days", "7")

    token = out.splitlines()[-1]
    assert TOKEN.fullmatch(token)
    row = ApiToken.objects.get(digest=token_digest(token))
    assert (row.write, row.all_applications, row.expires_at) == (
        True,
        False,
        certs.MID_LIFE + timedelta(days=7),
    )
    assert token not in out.splitlines()[0]
    made = AuditEvent.objects.get(action=AuditEvent.Action.API_TOKEN_CREATED)
    assert made.actor_label == "manage.py api_token" and token not in made.detail


def test_the_command_prints_one_json_object_with_json(owner, frontend_app):
    out, _ = run("--user", "otto", "--json")

    body = json.loads(out)
    assert TOKEN.fullmatch(body["token"])
    assert body == {
        "token": body["token"],
        "prefix": body["token"][:12],
        "user": "otto",
        "applications": None,
        "write": False,
        "expires_at": (certs.MID_LIFE + timedelta(days=90)).isoformat(),
    }


def test_the_command_warns_that_a_viewers_write_token_changes_nothing(viewer):
    _, err = run("--user", "vera", "--write")

    assert err.strip() == "vera is a viewer: the token can change nothing."


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--user", "nobody"), "No user 'nobody'."),
        (("--user", "otto", "--app", "nope"), "No application 'nope'."),
        (("--user", "otto", "--expires-days", "0"), "--expires-days must be between 1 and 366."),
        (("--user", "nadia"), "nadia has no role in the portal"),
        ((), "Name the user with --user"),
        (("--revoke", "cmp_00000000"), "No API token 'cmp_00000000'."),
    ],
)
def test_the_command_names_what_is_wrong(owner, frontend_app, django_user_model, args, reason):
    django_user_model.objects.create_user("nadia", "nadia@example.com", "nadia-pass-123")

    with pytest.raises(CommandError, match=re.escape(reason)):
        run(*args)
    assert not ApiToken.objects.exists()


def test_the_command_revokes_a_token_by_its_prefix(client, owner, frontend_app):
    token = make_token(owner)
    prefix = token[:12]

    out, _ = run("--revoke", prefix + "…")

    assert out.strip() == f"Revoked {prefix}… 'ci' of otto."
    assert Api(client, token).get("applications/").status_code == 401
    assert run("--revoke", prefix)[0].strip() == f"{prefix}… was already revoked."


# --- last use ----------------------------------------------------------------------------------


def writes_to_tokens(context) -> list[str]:
    return [
        q["sql"] for q in context.captured_queries if q["sql"].startswith("UPDATE") and "apitoken" in q["sql"]
    ]


def test_the_last_use_is_recorded_at_most_once_a_minute(client, owner, frontend_app):
    api = Api(client, make_token(owner))

    with CaptureQueriesContext(connection) as first:
        api.get("applications/")
    with CaptureQueriesContext(connection) as soon:
        for _ in range(5):
            api.get("applications/")
    with time_machine.travel(certs.MID_LIFE + timedelta(seconds=61), tick=False):
        with CaptureQueriesContext(connection) as later:
            api.get("applications/")

    assert len(writes_to_tokens(first)) == 1
    assert writes_to_tokens(soon) == []
    assert len(writes_to_tokens(later)) == 1
    assert ApiToken.objects.get().last_used_at == certs.MID_LIFE + timedelta(seconds=61)
