"""The audit log: parameter generation, health-check runs and every change (applications,
thresholds, notification channels, test notices, mutes, the admin site) are recorded, never with a
webhook URL or a secret; admins can read and filter the log; nobody else can."""

from __future__ import annotations

import json
import re

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from certmgr.healthcheck import schedule
from certmgr.models import Application, AuditEvent, Certificate
from certmgr.notifications import channels
from certmgr.notifications.models import NotificationChannel
from tests import certs

pytestmark = pytest.mark.django_db


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_downloading_or_fetching_parameters_is_audited_with_who_and_where(client, owner, store, leaf):
    cert = store(leaf.pem)
    client.force_login(owner)

    client.get(reverse("certificate-binding", args=[cert.pk, "json"]), REMOTE_ADDR="192.0.2.10")
    client.get(reverse("api-parameters", args=[cert.pk]) + "?format=cf&chain=1", REMOTE_ADDR="192.0.2.11")

    events = AuditEvent.objects.filter(action=AuditEvent.Action.PARAMETERS_GENERATED).order_by("at", "pk")
    assert [(e.actor, e.certificate, e.remote_addr, e.detail) for e in events] == [
        (owner, cert, "192.0.2.10", "json download"),
        (owner, cert, "192.0.2.11", "cf via the API with chain"),
    ]


@pytest.mark.usefixtures("mid_life")
def test_every_health_check_run_is_audited(client, owner, checked_app, ias):
    client.force_login(owner)
    client.post(reverse("health-check", args=[checked_app.slug]), REMOTE_ADDR="192.0.2.20")
    ias.unregister(checked_app.client_id)
    schedule.run_due(workers=1)

    runs = AuditEvent.objects.filter(action=AuditEvent.Action.HEALTH_CHECK_RUN).order_by("at", "pk")
    assert [(e.actor_label, e.actor, e.remote_addr, e.detail) for e in runs] == [
        ("otto", owner, "192.0.2.20", "manual: healthy"),
        ("scheduled health check", None, None, "scheduled: failed at token (invalid_client)"),
    ]


def test_only_admins_read_the_audit_log(client, owner, viewer, admin_user):
    for user in (owner, viewer):
        client.force_login(user)
        assert client.get(reverse("audit-log")).status_code == 403
    client.force_login(admin_user)
    assert client.get(reverse("audit-log")).status_code == 200


def test_the_audit_log_filters_by_action_application_actor_and_day(
    client, admin_user, store, leaf, frontend_app
):
    cert = store(leaf.pem)  # a "certificate added" entry by "test"
    AuditEvent.objects.create(
        action="key_read", actor_label="otto", application=frontend_app, certificate=cert
    )
    client.force_login(admin_user)

    page = text_of(client.get(reverse("audit-log") + "?action=key_read&application=frontend&actor=ott"))
    assert "private key read" in page and "certificate added" not in page.split("Detail")[1]

    today = AuditEvent.objects.latest("at").at.date().isoformat()
    assert "otto" in text_of(client.get(reverse("audit-log") + f"?since={today}&until={today}"))
    assert "No entries match." in text_of(
        client.get(reverse("audit-log") + "?since=2001-01-01&until=2001-01-02")
    )
    assert "“soon” is not a date (YYYY-MM-DD)." in text_of(client.get(reverse("audit-log") + "?since=soon"))


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "203.0.113.5", "10.0.0.1"),  # no trusted proxy: the header is the client's own claim
        (1, "203.0.113.5, 198.51.100.7", "198.51.100.7"),  # what the gorouter appended
        (2, "203.0.113.5, 198.51.100.7", "203.0.113.5"),
        (1, "203.0.113.5, not-an-address", "10.0.0.1"),
        (2, "198.51.100.7", "10.0.0.1"),  # fewer entries than trusted hops: nothing to trust
    ],
)
def test_the_audited_address_comes_through_the_trusted_proxies_only(
    client, owner, store, leaf, settings, hops, forwarded, expected
):
    settings.CERTMGR_TRUSTED_PROXY_HOPS = hops
    cert = store(leaf.pem)
    client.force_login(owner)

    client.get(
        reverse("certificate-binding", args=[cert.pk, "json"]),
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR=forwarded,
    )

    assert AuditEvent.objects.get(action=AuditEvent.Action.PARAMETERS_GENERATED).remote_addr == expected


# --- every change is audited: applications, thresholds, channels, test notices, mutes, the admin ----

NOW = certs.MID_LIFE  # 2026-06-01 12:00 UTC
HOOK_URL = "https://hooks.example.net/incoming/hookPathToken55?sig=hookQuerySig77"
HOOK_SECRET = "webhook-signing-secret-0123456789"
SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/slackTokenXyz123"
ANS = {
    "url": "https://clm-sl-ans-live-ans-service-api.cfapps.eu10.hana.ondemand.com",
    "token_url": "https://sub.authentication.eu10.hana.ondemand.com/oauth/token",
    "client_id": "sb-ans-client!b42",
    "client_secret": "ansClientSecretValue$42",
}


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.com", "bob-pass-123")


def audited():
    """The entries of this file's concern: not the logins that force_login records."""
    return AuditEvent.objects.exclude(
        action__in=[AuditEvent.Action.LOGGED_IN, AuditEvent.Action.LOGIN_FAILED]
    )


def entries(*actions) -> list[tuple[str, str, str | None, str]]:
    """(action, actor, application slug, detail), oldest first."""
    rows = audited().select_related("application").order_by("at", "pk")
    if actions:
        rows = rows.filter(action__in=actions)
    return [(e.action, e.actor_label, e.application.slug if e.application else None, e.detail) for e in rows]


def application_data(app, **changes) -> dict:
    """The application form as the edit page fills it in for ``app``, with ``changes``."""
    data = {
        "name": app.name,
        "slug": app.slug,
        "tenant_url": app.tenant_url,
        "client_id": app.client_id,
        "domains": ", ".join(app.domains),
        "backend_url": app.backend_url,
        "check_interval_minutes": app.check_interval_minutes,
        "owners": [u.pk for u in app.owners.all()],
        "owner_groups": [g.pk for g in app.owner_groups.all()],
        "notes": app.notes,
    }
    if app.backend_mtls:
        data["backend_mtls"] = "on"
    return {**data, **changes}


def channel_url(name, *args):
    return reverse(name, args=("frontend", *args))


@pytest.mark.usefixtures("frozen")
def test_creating_an_application_is_audited_with_its_tenant_and_owners(client, admin_user, owner):
    client.force_login(admin_user)

    response = client.post(
        reverse("application-create"),
        {
            "name": "Billing",
            "slug": "billing",
            "tenant_url": "https://billing.accounts.ondemand.com",
            "client_id": "b1",
            "owners": [admin_user.pk, owner.pk],
            "check_interval_minutes": "30",
        },
        REMOTE_ADDR="192.0.2.30",
    )

    assert response.status_code == 302
    event = audited().get()
    assert (event.action, event.actor, event.application.slug, event.remote_addr, event.at) == (
        "application_created",
        admin_user,
        "billing",
        "192.0.2.30",
        NOW,
    )
    assert event.detail == (
        "application 'Billing' (billing) created, tenant 'billing.accounts.ondemand.com', owners: ada, otto"
    )


@pytest.mark.usefixtures("frozen")
def test_editing_an_application_names_each_changed_field_and_the_owners_added_and_removed(
    client, owner, viewer, bob, frontend_app
):
    frontend_app.owners.add(bob)
    client.force_login(owner)
    backend = "https://api.example.com/hello?token=backendQueryToken9"

    response = client.post(
        reverse("application-edit", args=["frontend"]),
        application_data(
            frontend_app,
            name="Web shop",
            backend_url=backend,
            backend_mtls="on",
            check_interval_minutes="15",
            owners=[owner.pk, viewer.pk],
            notes="moved to the new cluster",
        ),
    )

    assert response.status_code == 302
    assert entries() == [
        (
            "application_changed",
            "otto",
            "frontend",
            "changed: name 'Frontend' → 'Web shop', backend URL, backend mTLS off → on, "
            "check interval (minutes) 60 → 15, owners (+vera, -bob), notes",
        )
    ]
    assert "backendQueryToken9" not in audited().get().detail
    # Saving the form unchanged is no change: no entry.
    frontend_app.refresh_from_db()
    client.post(reverse("application-edit", args=["frontend"]), application_data(frontend_app))
    assert audited().count() == 1


def test_a_refused_form_writes_no_audit_entry(client, owner, frontend_app, store, leaf):
    cert = store(leaf.pem)
    AuditEvent.objects.all().delete()  # the upload's own entry
    client.force_login(owner)

    refused = [
        client.post(
            reverse("application-edit", args=["frontend"]),
            application_data(frontend_app, name="Renamed", check_interval_minutes="1"),
        ),
        client.post(reverse("application-thresholds", args=["frontend"]), {"thresholds": "30, soon"}),
        client.post(
            channel_url("notification-channel-new"),
            {"kind": "webhook", "name": "hook", "url": HOOK_URL, "secret": "short"},
        ),
        client.post(
            channel_url("notification-channel-new"), {"kind": "email", "addresses": "not-an-address"}
        ),
    ]

    assert [r.status_code for r in refused] == [200] * 4
    mute = client.post(reverse("certificate-mute", args=[cert.pk]), {"muted_until": "2001-01-01"})
    assert mute.status_code == 302
    frontend_app.refresh_from_db()
    assert frontend_app.name == "Frontend"
    assert not audited().exists()


@pytest.mark.usefixtures("frozen")
def test_changing_the_notice_thresholds_is_audited_old_and_new(client, owner, frontend_app):
    client.force_login(owner)
    thresholds = reverse("application-thresholds", args=["frontend"])

    client.post(thresholds, {"thresholds": "7, 30"})
    client.post(thresholds, {"thresholds": "30 7"})  # the same again: no change, no entry
    client.post(thresholds, {"thresholds": ""})

    assert entries() == [
        ("application_changed", "otto", "frontend", "notice thresholds 60,30,14,7,1 (global default) → 30,7"),
        ("application_changed", "otto", "frontend", "notice thresholds 30,7 → 60,30,14,7,1 (global default)"),
    ]


@pytest.mark.usefixtures("frozen")
def test_a_webhook_channel_is_audited_from_creation_through_tests_to_deletion_without_url_or_secret(
    client, owner, admin_user, frontend_app, webhook
):
    client.force_login(owner)
    first_url = webhook.url + "/hooks/firstPathToken11"
    second_url = webhook.url + "/hooks/secondPathToken22?sig=secondQuerySig33"

    created = client.post(
        channel_url("notification-channel-new"),
        {"kind": "webhook", "name": "ops", "enabled": "on", "url": first_url, "secret": HOOK_SECRET},
    )
    row = NotificationChannel.objects.get()
    edited = client.post(
        channel_url("notification-channel-edit", row.pk),
        {"name": "ops webhook", "enabled": "on", "url": second_url, "secret": ""},
    )
    sent = client.post(channel_url("notification-channel-test", row.pk))
    webhook.script.statuses = [403]
    failed = client.post(channel_url("notification-channel-test", row.pk))
    rotated = client.post(
        channel_url("notification-channel-edit", row.pk),
        {"name": "ops webhook", "enabled": "on", "new_secret": "on"},
    )
    generated = channels.channel_for(NotificationChannel.objects.get()).secret
    deleted = client.post(channel_url("notification-channel-delete", row.pk))

    # Every form redirects after its POST (the rotated secret is shown on the page it leads to).
    assert [r.status_code for r in (created, edited, sent, failed, rotated, deleted)] == [302] * 6
    assert len(webhook.deliveries) == 2
    assert entries() == [
        ("channel_changed", "otto", "frontend", "webhook channel 'ops' created"),
        (
            "channel_changed",
            "otto",
            "frontend",
            "webhook channel 'ops webhook' changed: name 'ops' → 'ops webhook', URL",
        ),
        ("channel_tested", "otto", "frontend", "test notice through webhook channel 'ops webhook': sent"),
        (
            "channel_tested",
            "otto",
            "frontend",
            "test notice through webhook channel 'ops webhook': failed: localhost refused the notice (HTTP 403).",
        ),
        (
            "channel_changed",
            "otto",
            "frontend",
            "webhook channel 'ops webhook' changed: signing secret (generated)",
        ),
        ("channel_changed", "otto", "frontend", "webhook channel 'ops webhook' deleted"),
    ]
    assert {e.at for e in audited().all()} == {NOW}
    client.force_login(admin_user)
    audit_page = client.get(reverse("audit-log")).content.decode()
    for text in [*audited().values_list("detail", flat=True), audit_page]:
        for secret in (first_url, second_url, "firstPathToken11", "secondPathToken22", "secondQuerySig33"):
            assert secret not in text
        assert HOOK_SECRET not in text and generated not in text


@pytest.mark.usefixtures("frozen")
def test_slack_and_alert_notification_channels_are_audited_without_url_or_client_secret(
    client, owner, frontend_app
):
    client.force_login(owner)

    client.post(channel_url("notification-channel-new"), {"kind": "slack", "name": "chat", "url": SLACK_URL})
    slack = NotificationChannel.objects.get(kind="slack")
    client.post(
        channel_url("notification-channel-edit", slack.pk),
        {"name": "chat", "enabled": "on", "url": SLACK_URL.replace("Xyz123", "Abc456")},
    )
    client.post(channel_url("notification-channel-new"), {"kind": "alert_notification", "name": "ans", **ANS})
    ans = NotificationChannel.objects.get(kind="alert_notification")
    client.post(
        channel_url("notification-channel-edit", ans.pk),
        {**ANS, "name": "ans", "enabled": "on", "client_secret": "anotherClientSecret$43"},
    )
    client.post(
        channel_url("notification-channel-edit", ans.pk),
        {**ANS, "name": "ans", "enabled": "on", "token_url": ANS["token_url"] + "2", "client_secret": ""},
    )

    assert [detail for *_, detail in entries()] == [
        "Slack channel 'chat' created (disabled)",
        "Slack channel 'chat' changed: enabled off → on, URL",
        "Alert Notification channel 'ans' created (disabled)",
        "Alert Notification channel 'ans' changed: enabled off → on, client secret",
        "Alert Notification channel 'ans' changed: token URL",
    ]
    for detail in audited().values_list("detail", flat=True):
        for secret in (
            "slackTokenXyz123",
            "Abc456",
            "/services/",
            ANS["client_secret"],
            "anotherClientSecret",
        ):
            assert secret not in detail
        assert "oauth/token" not in detail


@pytest.mark.usefixtures("frozen")
def test_an_email_channel_and_its_test_notice_are_audited_with_counts_not_addresses(
    client, owner, frontend_app, smtp
):
    client.force_login(owner)
    smtp.refuse = {"oncall@example.com"}

    client.post(
        channel_url("notification-channel-new"),
        {
            "kind": "email",
            "name": "team mail",
            "enabled": "on",
            "include_owners": "on",
            "addresses": "oncall@example.com, ops@example.com",
        },
    )
    row = NotificationChannel.objects.get()
    client.post(
        channel_url("notification-channel-edit", row.pk),
        {"name": "team mail", "enabled": "on", "include_owners": "on", "addresses": "oncall@example.com"},
    )
    client.post(channel_url("notification-channel-test", row.pk))

    [created, changed, tested] = entries()
    assert created[3] == "email channel 'team mail' created (owners included, 2 more addresses)"
    assert changed[3] == "email channel 'team mail' changed: addresses (2 → 1)"
    assert tested[0] == "channel_tested"
    assert tested[3].startswith(
        "test notice through email channel 'team mail': sent to 1 of 2 recipients; "
        "failed for oncall@example.com: "
    )
    assert "550" in tested[3]


@pytest.mark.usefixtures("frozen")
def test_a_test_notice_that_cannot_be_sent_is_audited_with_the_reason(client, owner, frontend_app):
    row = NotificationChannel.objects.create(
        application=frontend_app, kind="slack", name="broken", sealed_secret=b"not a vault token"
    )
    client.force_login(owner)

    client.post(channel_url("notification-channel-test", row.pk))

    [(action, actor, app, detail)] = entries()
    assert (action, actor, app) == ("channel_tested", "otto", "frontend")
    assert detail.startswith(
        "test notice through Slack channel 'broken': not sent: The channel's secret could not be"
    )


@pytest.mark.usefixtures("frozen")
def test_muting_unmuting_and_promoting_certificates_are_audited(client, owner, frontend_app, store, leaf):
    active = store(leaf.pem)
    successor = certs.issue("frontend-app (P000042)", key_slot=21, serial=0x2001)
    staged = store(successor.pem)
    Certificate.objects.filter(pk=staged.pk).update(lifecycle=Certificate.Lifecycle.STAGED)
    AuditEvent.objects.all().delete()
    client.force_login(owner)

    client.post(
        reverse("certificate-mute", args=[active.pk]), {"muted_until": "2026-07-01", "action": "mute"}
    )
    client.post(reverse("certificate-mute", args=[active.pk]), {"action": "unmute"})
    client.post(
        reverse("application-promote", args=["frontend", staged.pk]),
        {"confirm": "yes"},
        REMOTE_ADDR="192.0.2.40",
    )

    rows = audited().order_by("at", "pk")
    assert [(e.action, e.actor, e.certificate_id, e.detail) for e in rows] == [
        ("certificate_changed", owner, active.pk, "expiry notices muted until 2026-07-01 00:00 UTC"),
        ("certificate_changed", owner, active.pk, "expiry notices unmuted"),
        ("certificate_changed", owner, staged.pk, "promoted: staged → active"),
        ("certificate_changed", owner, active.pk, "retired by rotation"),
        (
            "application_changed",
            owner,
            None,
            f"in use after the rotation: service key frontend-ias-key → frontend-ias-key-{staged.fingerprint[:8]}, "
            f"ServiceBinding frontend-ias → frontend-ias-{staged.fingerprint[:8]}",
        ),
    ]
    assert rows.last().remote_addr == "192.0.2.40"


# --- the admin site -----------------------------------------------------------------------------


def admin_application_data(app=None, **changes) -> dict:
    """The admin's application form filled in for ``app`` (empty for a new one), with ``changes``."""
    data = {"domains": "[]", "notice_thresholds": "[]", "check_interval_minutes": 60}
    if app is not None:
        data = {
            "name": app.name,
            "slug": app.slug,
            "tenant_url": app.tenant_url,
            "client_id": app.client_id,
            "domains": json.dumps(app.domains),
            "backend_url": app.backend_url,
            "notice_thresholds": json.dumps(app.notice_thresholds),
            "check_interval_minutes": app.check_interval_minutes,
            "owners": [u.pk for u in app.owners.all()],
            "owner_groups": [g.pk for g in app.owner_groups.all()],
            "notes": app.notes,
        }
    return {**data, **changes}


@pytest.mark.usefixtures("frozen")
def test_application_changes_in_the_admin_are_audited(client, admin_user, owner, viewer, frontend_app):
    client.force_login(admin_user)
    ops = Group.objects.create(name="ops")

    added = client.post(
        "/admin/certmgr/application/add/",
        admin_application_data(name="Billing", slug="billing", owners=[owner.pk]),
    )
    changed = client.post(
        f"/admin/certmgr/application/{frontend_app.pk}/change/",
        admin_application_data(
            frontend_app,
            client_id="new-client-id",
            domains='["accounts.ondemand.com", "accounts.cloud.sap"]',
            notice_thresholds="[30, 7]",
            owners=[viewer.pk],
            owner_groups=[ops.pk],
        ),
    )
    billing = Application.objects.get(slug="billing")
    deleted = client.post(f"/admin/certmgr/application/{billing.pk}/delete/", {"post": "yes"})

    assert [r.status_code for r in (added, changed, deleted)] == [302] * 3
    assert entries() == [
        (
            "application_created",
            "ada",
            None,  # deleted since
            "via admin: application 'Billing' (billing) created, owners: otto",
        ),
        (
            "application_changed",
            "ada",
            "frontend",
            "via admin: application 'Frontend' (frontend) changed: "
            "client id '5fd2be25-0e09-4321-8817-4a7b11a2ace2' → 'new-client-id', "
            "trusted domains accounts.ondemand.com → accounts.ondemand.com,accounts.cloud.sap, "
            "notice thresholds none → 30,7, owners (+vera, -otto), owner groups (+ops)",
        ),
        (
            "application_changed",
            "ada",
            None,
            "via admin: application 'Billing' (billing) deleted with 0 certificates",
        ),
    ]


@pytest.mark.usefixtures("frozen")
def test_an_admin_form_refused_writes_no_audit_entry(client, admin_user, frontend_app):
    client.force_login(admin_user)

    response = client.post(
        f"/admin/certmgr/application/{frontend_app.pk}/change/",
        admin_application_data(frontend_app, name="Renamed", check_interval_minutes="1"),
    )

    assert response.status_code == 200 and "errornote" in response.content.decode()
    assert not audited().exists()


@pytest.mark.usefixtures("frozen")
def test_certificate_changes_and_bulk_deletions_in_the_admin_are_audited(
    client, admin_user, frontend_app, store, leaf
):
    cert = store(leaf.pem)
    other = store(certs.issue("other", key_slot=21, serial=0x2002).pem)
    AuditEvent.objects.all().delete()
    client.force_login(admin_user)

    changed = client.post(
        f"/admin/certmgr/certificate/{cert.pk}/change/",
        {"application": frontend_app.pk, "lifecycle": "retired"},
    )
    deleted = client.post(
        "/admin/certmgr/certificate/",
        {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"},
    )

    assert [r.status_code for r in (changed, deleted)] == [302, 302]
    assert not Certificate.objects.filter(pk=other.pk).exists()
    rows = audited().order_by("at", "pk")
    assert [(e.action, e.actor, e.application, e.certificate_id, e.detail) for e in rows] == [
        (
            "certificate_changed",
            admin_user,
            frontend_app,
            cert.pk,
            f"via admin: certificate '{cert.subject}' ({cert.display_fingerprint[:23]}…) changed: "
            "lifecycle 'active' → 'retired'",
        ),
        (
            "certificate_changed",
            admin_user,
            frontend_app,
            None,
            f"via admin: certificate '{other.subject}' ({other.display_fingerprint[:23]}…) deleted",
        ),
    ]


@pytest.mark.usefixtures("frozen")
def test_role_changes_of_users_and_groups_in_the_admin_are_audited(client, admin_user, owner):
    ops = Group.objects.create(name="ops")
    client.force_login(admin_user)

    changed = client.post(
        f"/admin/auth/user/{owner.pk}/change/",
        {
            "username": "otto",
            "email": "otto@example.com",
            "is_active": "on",
            "is_superuser": "on",
            "groups": [ops.pk],
            "date_joined_0": "2026-06-01",
            "date_joined_1": "12:00:00",
        },
    )
    password = client.post(
        f"/admin/auth/user/{owner.pk}/password/",
        {
            "password1": "a-new-Passw0rd-for-otto",
            "password2": "a-new-Passw0rd-for-otto",
            "usable_password": "true",
        },
    )
    group = client.post(
        f"/admin/auth/group/{ops.pk}/change/",
        {"name": "operations", "permissions": [Permission.objects.get(codename="change_application").pk]},
    )

    assert [r.status_code for r in (changed, password, group)] == [302] * 3
    assert [detail for *_, detail in entries(AuditEvent.Action.ROLES_CHANGED)] == [
        "via admin: user 'otto' changed: superuser status off → on, groups (+ops)",
        "via admin: user 'otto' changed: password",
        "via admin: group 'operations' changed: name 'ops' → 'operations', permissions (+certmgr.change_application)",
    ]
    assert not any("Passw0rd" in d for d in audited().values_list("detail", flat=True))


@pytest.mark.usefixtures("frozen")
def test_not_even_an_admin_can_rewrite_history_in_the_admin_site(client, admin_user, frontend_app):
    from certmgr.models import HealthCheckRun

    run = HealthCheckRun.objects.create(application=frontend_app, trigger="manual", ok=False, steps=[])
    entry = AuditEvent.record(AuditEvent.Action.HEALTH_CHECK_RUN, actor_label="ada", application=frontend_app)
    client.force_login(admin_user)

    for model, pk in (("healthcheckrun", run.pk), ("auditevent", entry.pk)):
        assert client.get(reverse(f"admin:certmgr_{model}_delete", args=[pk])).status_code == 403
        assert (
            client.post(reverse(f"admin:certmgr_{model}_delete", args=[pk]), {"post": "yes"}).status_code
            == 403
        )
        assert (
            client.post(reverse(f"admin:certmgr_{model}_change", args=[pk]), {"detail": "x"}).status_code
            == 403
        )

    assert HealthCheckRun.objects.filter(pk=run.pk).exists()
    assert AuditEvent.objects.filter(pk=entry.pk, detail="").exists()


def test_a_detail_longer_than_the_column_is_cut_not_refused(frontend_app):
    """PostgreSQL refuses a value over varchar(500); the entry must still be written."""
    entry = AuditEvent.record(
        AuditEvent.Action.APPLICATION_CHANGED, actor_label="x", detail="changed: " + "n" * 600
    )

    entry.refresh_from_db()
    assert len(entry.detail) == 500 and entry.detail.endswith("…") and entry.detail.startswith("changed: nnn")
