"""Every URL × every persona: anonymous, a viewer, the owner of application A, the owner of
application B, an admin, and someone logged in without any role. Viewers see certificates and
results; owners manage their own applications only; admins everything; without a role, nothing.
No key material reaches anyone but A's owner or an admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from certmgr.models import Application, HealthCheckRun
from certmgr.notifications.models import NotificationChannel
from certmgr.rotation import pending_keys
from tests import certs

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "viewer", "owner_a", "owner_b", "admin", "no_role")
ALL, MANAGE, ADMIN = "any logged-in user", "A's owners and admins", "admins only"

# (URL name, method, who may, kwargs from the world)
ROUTES = [
    ("dashboard", "get", ALL, lambda w: {}),
    ("certificates", "get", ALL, lambda w: {}),
    ("certificate", "get", ALL, lambda w: {"pk": w["cert_a"].pk}),
    ("certificate-pem", "get", ALL, lambda w: {"pk": w["cert_a"].pk}),
    ("certificate-binding", "get", ALL, lambda w: {"pk": w["cert_a"].pk, "fmt": "json"}),
    ("api-certificate-binding", "get", ALL, lambda w: {"pk": w["cert_a"].pk}),
    ("application", "get", ALL, lambda w: {"slug": "frontend"}),
    ("application-credential-types", "get", ALL, lambda w: {"slug": "frontend"}),
    ("health-history", "get", ALL, lambda w: {"slug": "frontend"}),
    ("health-run", "get", ALL, lambda w: {"slug": "frontend", "pk": w["run_a"].pk}),
    ("notifications", "get", ALL, lambda w: {"slug": "frontend"}),
    ("application-rotation", "get", ALL, lambda w: {"slug": "frontend"}),
    ("account-calendar", "get", ALL, lambda w: {}),
    ("certificate-key", "post", MANAGE, lambda w: {"pk": w["cert_a"].pk}),
    ("certificate-lifecycle", "post", MANAGE, lambda w: {"pk": w["cert_a"].pk}),
    ("certificate-mute", "post", MANAGE, lambda w: {"pk": w["cert_a"].pk}),
    ("application-edit", "get", MANAGE, lambda w: {"slug": "frontend"}),
    ("application-upload", "get", MANAGE, lambda w: {"slug": "frontend"}),
    ("pending-key-new", "post", MANAGE, lambda w: {"slug": "frontend"}),
    ("pending-key-csr", "get", MANAGE, lambda w: {"slug": "frontend", "pk": w["pending_a"].pk}),
    ("application-promote", "post", MANAGE, lambda w: {"slug": "frontend", "pk": w["staged_a"].pk}),
    ("health-check", "post", MANAGE, lambda w: {"slug": "frontend"}),
    ("notification-channel-new", "get", MANAGE, lambda w: {"slug": "frontend"}),
    ("notification-channel-edit", "get", MANAGE, lambda w: {"slug": "frontend", "pk": w["channel_a"].pk}),
    ("notification-channel-test", "post", MANAGE, lambda w: {"slug": "frontend", "pk": w["channel_a"].pk}),
    ("application-thresholds", "post", MANAGE, lambda w: {"slug": "frontend"}),
    ("application-create", "get", ADMIN, lambda w: {}),
    ("audit-log", "get", ADMIN, lambda w: {}),
    ("pending-key-discard", "post", MANAGE, lambda w: {"slug": "frontend", "pk": w["pending_a"].pk}),
    # Last: it deletes what the routes above use.
    ("notification-channel-delete", "post", MANAGE, lambda w: {"slug": "frontend", "pk": w["channel_a"].pk}),
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
    pending_a = pending_keys.create(
        frontend_app, subject="CN=frontend", key_type="ec-p256", actor_label="test"
    )
    nobody = django_user_model.objects.create_user("nadia", "nadia@example.com", "nadia-pass-123")
    users = {"viewer": viewer, "owner_a": owner, "owner_b": bob, "admin": admin_user, "no_role": nobody}
    return {"cert_a": cert_a, "staged_a": staged_a, "run_a": run_a, "channel_a": channel_a, "pending_a": pending_a,
            "users": users}  # fmt: skip


def allowed(persona: str, who: str) -> bool:
    if persona == "no_role":
        return False
    return persona == "admin" or who == ALL or (who == MANAGE and persona == "owner_a")


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_url_answers_each_persona_as_the_role_says(client, world, persona):
    if persona != "anonymous":
        client.force_login(world["users"][persona])
    wrong = []
    for name, method, who, kwargs in ROUTES:
        url = reverse(name, kwargs=kwargs(world))
        response = getattr(client, method)(url)
        body = b"" if getattr(response, "streaming", False) else response.content
        if persona == "anonymous":
            ok = response.status_code == 302 and response["Location"].startswith("/login/")
        elif allowed(persona, who):
            ok = response.status_code in (200, 302)
        else:
            ok = response.status_code == 403
        if not ok:
            wrong.append(f"{method.upper()} {url} ({who}): {response.status_code}")
        if not allowed(persona, MANAGE):
            assert b"PRIVATE KEY" not in body, f"key material in {url} for {persona}"
    assert wrong == [], f"{persona}: " + "; ".join(wrong)


@pytest.mark.parametrize("persona", ["viewer", "owner_b", "no_role"])
def test_no_key_download_for_anyone_but_the_owner_or_an_admin(client, world, persona):
    client.force_login(world["users"][persona])
    response = client.post(reverse("certificate-key", args=[world["cert_a"].pk]), {"password": ""})
    assert response.status_code == 403 and b"PRIVATE KEY" not in response.content
