"""The notification pages: channels made through the forms (secrets sealed, never shown again),
"send test notice" against a real SMTP server and a real HTTPS receiver on 127.0.0.1, the ledger's
failed notices, thresholds, a certificate's mute; Vera may look and nothing more."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from certmgr.models import AuditEvent
from certmgr.notifications import channels
from certmgr.notifications import ledger as notify
from certmgr.notifications.models import Notice, NotificationChannel
from tests import certs

pytestmark = pytest.mark.django_db

NOW = certs.MID_LIFE  # 2026-06-01 12:00 UTC
SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/slackTokenXyz123"
TEAMS_URL = (
    "https://prod-01.westeurope.logic.azure.com/workflows/wf1/triggers/manual/paths/invoke?sig=teamsSig987"
)
HOOK_SECRET = "webhook-signing-secret-0123456789"
ANS = {
    "url": "https://clm-sl-ans-live-ans-service-api.cfapps.eu10.hana.ondemand.com",
    "token_url": "https://sub.authentication.eu10.hana.ondemand.com/oauth/token",
    "client_id": "sb-ans-client!b42",
    "client_secret": "ansClientSecretValue$42",
}


@pytest.fixture(autouse=True)
def _mid_life():
    with time_machine.travel(NOW, tick=False):
        yield


def url(name, *args):
    return reverse(name, args=args)


def notifications_page(client, slug="frontend") -> str:
    response = client.get(url("notifications", slug))
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def create(client, kind, **fields):
    data = {"kind": kind, "enabled": "on", **fields}
    return client.post(url("notification-channel-new", "frontend"), data)


def make_webhook(client, hook_url, secret=HOOK_SECRET) -> NotificationChannel:
    response = client.post(
        url("notification-channel-new", "frontend"),
        {"kind": "webhook", "name": "ops webhook", "enabled": "on", "url": hook_url, "secret": secret},
        follow=True,
    )
    assert "Channel 'ops webhook' added." in page_messages(response)
    return NotificationChannel.objects.get(name="ops webhook")


def email_channel(app, **options) -> NotificationChannel:
    options = {"include_owners": True, "addresses": ["oncall@example.com"], **options}
    return NotificationChannel.objects.create(
        application=app, kind="email", name="team mail", options=options
    )


# --- creating channels: secrets sealed, never shown -----------------------------------------------


def test_the_owner_creates_a_channel_of_each_kind_and_no_secret_is_readable(otto, frontend_app):
    hook_url = "https://hooks.example.net/incoming/hookPathToken55"
    responses = [
        create(
            otto,
            "email",
            name="team mail",
            include_owners="on",
            addresses="oncall@example.com\nops@example.com",
        ),
        create(otto, "webhook", name="ops webhook", url=hook_url, secret=HOOK_SECRET),
        create(otto, "slack", name="slack", url=SLACK_URL),
        create(otto, "teams", name="teams", url=TEAMS_URL),
        create(otto, "alert_notification", name="ans", **ANS),
    ]

    assert [r.status_code for r in responses] == [302] * 5
    rows = {row.kind: row for row in NotificationChannel.objects.filter(application=frontend_app)}
    assert rows["email"].options == {
        "include_owners": True,
        "addresses": ["oncall@example.com", "ops@example.com"],
    }
    assert rows["email"].sealed_secret is None
    assert rows["alert_notification"].options == {k: v for k, v in ANS.items() if k != "client_secret"}
    secrets_in_clear = [hook_url, HOOK_SECRET, SLACK_URL, TEAMS_URL, ANS["client_secret"]]
    for row in rows.values():
        sealed = bytes(row.sealed_secret or b"")
        assert not any(secret.encode() in sealed for secret in secrets_in_clear), row.kind
    # Sealed, not lost: the senders unseal what was entered.
    assert (channels.channel_for(rows["webhook"]).url, channels.channel_for(rows["webhook"]).secret) == (
        hook_url,
        HOOK_SECRET,
    )
    assert channels.channel_for(rows["slack"]).url == SLACK_URL
    assert channels.channel_for(rows["teams"]).url == TEAMS_URL
    assert channels.channel_for(rows["alert_notification"]).client_secret == ANS["client_secret"]

    page = notifications_page(otto)
    edit_pages = [
        html.unescape(otto.get(url("notification-channel-edit", "frontend", row.pk)).content.decode())
        for row in rows.values()
    ]
    for text in [page, *edit_pages]:
        for secret in secrets_in_clear + ["hookPathToken55", "slackTokenXyz123", "teamsSig987", "/incoming/"]:
            assert secret not in text
    assert "URL set (host hooks.example.net), signing secret set" in page
    assert "URL set (host hooks.slack.com)" in page
    assert "URL set (host prod-01.westeurope.logic.azure.com)" in page
    assert "3 recipients (owners included): otto@example.com, oncall@example.com, ops@example.com" in page


def test_an_empty_signing_secret_is_generated_and_shown_once(otto, frontend_app):
    posted = create(otto, "webhook", name="ops webhook", url="https://hooks.example.net/in")
    response = otto.get(posted["Location"])  # redirect after POST: a reload makes no second channel

    assert posted.status_code == 302 and posted["Location"] == url("notifications", "frontend")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    row = NotificationChannel.objects.get(name="ops webhook")
    generated = channels.channel_for(row).secret
    assert len(generated) >= 32
    assert generated in response.content.decode()
    assert "shown only this once" in response.content.decode()
    assert generated not in json.dumps(session_data(otto))  # sealed while it waited
    assert generated not in notifications_page(otto)  # and never again
    assert generated not in otto.get(url("notification-channel-edit", "frontend", row.pk)).content.decode()


def test_editing_with_empty_secret_fields_keeps_the_stored_ones(otto, frontend_app):
    create(otto, "slack", name="slack", url=SLACK_URL)
    slack = NotificationChannel.objects.get(name="slack")
    hook = make_webhook(otto, "https://hooks.example.net/first")
    sealed_before = bytes(slack.sealed_secret)

    edit_slack = otto.post(
        url("notification-channel-edit", "frontend", slack.pk), {"name": "chat", "url": ""}
    )
    edit_hook = otto.post(
        url("notification-channel-edit", "frontend", hook.pk),
        {"name": "ops webhook", "enabled": "on", "url": "https://hooks.example.net/second", "secret": ""},
    )

    assert edit_slack.status_code == edit_hook.status_code == 302
    slack.refresh_from_db()
    hook.refresh_from_db()
    assert (slack.name, slack.enabled, bytes(slack.sealed_secret)) == ("chat", False, sealed_before)
    sender = channels.channel_for(hook)
    assert (sender.url, sender.secret) == ("https://hooks.example.net/second", HOOK_SECRET)

    rotated = otto.post(
        url("notification-channel-edit", "frontend", hook.pk),
        {"name": "ops webhook", "new_secret": "on"},
        follow=True,
    )

    hook.refresh_from_db()
    sender = channels.channel_for(hook)
    assert sender.url == "https://hooks.example.net/second" and sender.secret != HOOK_SECRET
    assert rotated.redirect_chain == [(url("notifications", "frontend"), 302)]
    assert sender.secret in rotated.content.decode()


def test_reloading_the_page_after_adding_a_channel_adds_no_second_one(otto, frontend_app):
    posted = create(otto, "webhook", name="ops webhook", url="https://hooks.example.net/in")
    shown = otto.get(posted["Location"])
    reloaded = otto.get(posted["Location"])  # what the browser's reload does after a redirect

    assert NotificationChannel.objects.filter(name="ops webhook").count() == 1
    secret = channels.channel_for(NotificationChannel.objects.get(name="ops webhook")).secret
    assert secret in shown.content.decode() and secret not in reloaded.content.decode()


def session_data(client) -> dict:
    return dict(client.session.items())


@pytest.mark.parametrize(
    ("hook_url", "loopback_http", "accepted"),
    [
        ("http://hooks.example.net/in", True, False),
        ("ftp://hooks.example.net/in", True, False),
        ("http://127.0.0.1:9/in", False, False),
        ("http://127.0.0.1:9/in", True, True),  # development only (DEBUG)
        ("https://hooks.example.net/in", False, True),
    ],
)
def test_webhook_urls_must_be_https_except_to_this_machine_in_development(
    otto, settings, hook_url, loopback_http, accepted
):
    settings.CERTMGR_ALLOW_HTTP_LOOPBACK = settings.DEBUG = loopback_http  # both follow DJANGO_DEBUG

    response = create(otto, "webhook", name="hook", url=hook_url, secret=HOOK_SECRET)

    assert NotificationChannel.objects.exists() is accepted
    if not accepted:
        assert response.status_code == 200
        assert "Only https URLs are allowed" in html.unescape(response.content.decode())
        assert hook_url.split("//")[1] not in response.content.decode()  # the refused URL is not echoed


def test_the_form_refuses_bad_addresses_short_secrets_and_a_missing_client_secret(otto):
    bad_mail = create(otto, "email", name="mail", addresses="ok@example.com, not-an-address")
    short = create(otto, "webhook", name="hook", url="https://hooks.example.net/in", secret="short")
    no_secret = create(otto, "alert_notification", name="ans", **{**ANS, "client_secret": ""})

    assert [r.status_code for r in (bad_mail, short, no_secret)] == [200] * 3
    assert "Not an email address: not-an-address" in bad_mail.content.decode()
    assert "Use at least 16 characters" in short.content.decode()
    assert no_secret.context["form"].errors["client_secret"] == ["This field is required."]
    assert not NotificationChannel.objects.exists()


def test_the_owner_deletes_a_channel(otto, frontend_app):
    row = email_channel(frontend_app)

    response = otto.post(url("notification-channel-delete", "frontend", row.pk))

    assert response.status_code == 302 and not NotificationChannel.objects.exists()


def test_a_channel_of_another_application_is_not_found_here(otto, frontend_app, backend_app):
    other = email_channel(backend_app)

    assert otto.get(url("notification-channel-edit", "frontend", other.pk)).status_code == 404
    assert otto.post(url("notification-channel-delete", "frontend", other.pk)).status_code == 404


# --- Vera looks, and nothing more -----------------------------------------------------------------


def test_a_viewer_sees_the_page_without_forms_and_every_change_is_refused(vera, frontend_app, store, leaf):
    cert = store(leaf.pem)
    row = email_channel(frontend_app)
    frontend_app.notice_thresholds = [30]
    frontend_app.save()

    page = notifications_page(vera)
    assert "team mail" in page and "30 days" in page
    assert (
        'action="/apps/frontend/' not in page
        and "Send test notice" not in page
        and "Add a channel" not in page
    )
    assert 'action="/certificates/' not in html.unescape(
        vera.get(url("certificate", cert.pk)).content.decode()
    )
    assert "View notifications" in vera.get(url("application", "frontend")).content.decode()

    gets = [url("notification-channel-new", "frontend"), url("notification-channel-edit", "frontend", row.pk)]
    posts = [
        (
            url("notification-channel-new", "frontend"),
            {"kind": "email", "name": "mine", "addresses": "v@example.com"},
        ),
        (
            url("notification-channel-edit", "frontend", row.pk),
            {"name": "taken over", "addresses": "v@example.com"},
        ),
        (url("notification-channel-delete", "frontend", row.pk), {}),
        (url("notification-channel-test", "frontend", row.pk), {}),
        (url("application-thresholds", "frontend"), {"thresholds": "1"}),
        (url("certificate-mute", cert.pk), {"muted_until": "2026-07-01", "action": "mute"}),
    ]
    assert [vera.get(u).status_code for u in gets] == [403] * 2
    assert [vera.post(u, data).status_code for u, data in posts] == [403] * len(posts)

    row.refresh_from_db()
    frontend_app.refresh_from_db()
    cert.refresh_from_db()
    assert list(NotificationChannel.objects.values_list("name", flat=True)) == ["team mail"]
    assert row.options["addresses"] == ["oncall@example.com"]
    assert frontend_app.notice_thresholds == [30] and cert.muted_until is None


# --- "send test notice" ---------------------------------------------------------------------------


def test_a_test_notice_by_email_reaches_every_recipient(otto, frontend_app, smtp):
    row = email_channel(frontend_app)

    response = otto.post(url("notification-channel-test", "frontend", row.pk), follow=True)

    assert response.status_code == 200
    assert page_messages(response) == ["Test notice sent through 'team mail' to 2 of 2 recipients."]
    assert sorted(r for mail in smtp.mails for r in mail.recipients) == [
        "oncall@example.com",
        "otto@example.com",
    ]
    assert smtp.mails[0].subject == "Test notice for Frontend from the IAS certificate portal"


def test_a_refused_recipient_is_named_and_the_others_still_get_the_test(otto, frontend_app, smtp):
    smtp.refuse = {"oncall@example.com"}
    row = email_channel(frontend_app)

    response = otto.post(url("notification-channel-test", "frontend", row.pk), follow=True)

    [error, success] = page_messages(response)
    assert error.startswith(
        "The test notice through 'team mail' to oncall@example.com failed (fix the channel"
    )
    assert "refused oncall@example.com: 550" in error
    assert success == "Test notice sent through 'team mail' to 1 of 2 recipients."
    assert [mail.recipients for mail in smtp.mails] == [["otto@example.com"]]


def test_a_test_notice_through_a_webhook_arrives_signed(otto, frontend_app, webhook):
    row = make_webhook(otto, webhook.url + "/notices")

    response = otto.post(url("notification-channel-test", "frontend", row.pk), follow=True)

    assert page_messages(response) == ["Test notice sent through 'ops webhook'."]
    [delivery] = webhook.deliveries
    assert delivery.path == "/notices"
    expected = hmac.new(HOOK_SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["X-Certmgr-Signature"] == f"sha256={expected}"
    assert json.loads(delivery.body)["event"] == "test"


def test_a_receiver_answering_403_shows_an_error_not_a_500(otto, frontend_app, webhook):
    row = make_webhook(otto, webhook.url + "/notices")
    webhook.script.statuses = [403]

    response = otto.post(url("notification-channel-test", "frontend", row.pk), follow=True)

    assert response.status_code == 200
    assert page_messages(response) == [
        "The test notice through 'ops webhook' failed (fix the channel's configuration): "
        "localhost refused the notice (HTTP 403)."
    ]
    assert len(webhook.deliveries) == 1
    assert "/notices" not in response.content.decode()


def test_a_test_notice_is_a_ledger_row_sent_through_the_one_delivery_path(otto, frontend_app, smtp):
    row = email_channel(frontend_app)

    otto.post(url("notification-channel-test", "frontend", row.pk), follow=True)
    notify.deliver(timezone.now() + timedelta(hours=1))  # the sender's next round sends nothing more

    rows = Notice.objects.filter(channel=row).order_by("recipient")
    assert [(n.event, n.recipient, n.state, n.attempts) for n in rows] == [
        ("test", "oncall@example.com", "sent", 1),
        ("test", "otto@example.com", "sent", 1),
    ]
    assert len(smtp.mails) == 2


def test_a_failed_test_notice_says_whether_a_retry_may_pass_and_is_not_retried_later(
    otto, frontend_app, webhook
):
    row = make_webhook(otto, webhook.url + "/notices")
    webhook.script.statuses = [503]

    response = otto.post(url("notification-channel-test", "frontend", row.pk), follow=True)
    notify.deliver(timezone.now() + timedelta(hours=1))

    assert page_messages(response) == [
        "The test notice through 'ops webhook' failed (a temporary problem: try again later): "
        "localhost could not take the notice now (HTTP 503)."
    ]
    assert len(webhook.deliveries) == 1
    [notice] = Notice.objects.filter(channel=row)
    assert (notice.event, notice.state) == ("test", "failed")
    assert "failed-notices" not in notifications_page(otto)  # no alarm for a button's answer


def test_a_channel_whose_secret_cannot_be_unsealed_says_so(otto, frontend_app):
    row = NotificationChannel.objects.create(
        application=frontend_app, kind="slack", name="broken", sealed_secret=b"not a vault token"
    )

    response = otto.post(url("notification-channel-test", "frontend", row.pk), follow=True)

    assert response.status_code == 200
    [error] = page_messages(response)
    assert error.startswith(
        "The test notice through 'broken' was not sent: The channel's secret could not be"
    )
    assert "could not be unsealed" in notifications_page(otto)


# --- the ledger -----------------------------------------------------------------------------------


def test_failed_notices_come_first_with_their_error_and_the_application_page_counts_them(
    otto, frontend_app, store, leaf
):
    cert = store(leaf.pem)
    row = email_channel(frontend_app)
    error = "The mail server 127.0.0.1:25 refused gone@example.com: 550 5.1.1 no such mailbox"
    Notice.objects.create(
        application=frontend_app,
        certificate=cert,
        channel=row,
        event="threshold",
        threshold=30,
        recipient="gone@example.com",
        state="failed",
        attempts=1,
        last_error=error,
    )
    Notice.objects.create(
        application=frontend_app,
        certificate=cert,
        channel=row,
        event="threshold",
        threshold=30,
        recipient="oncall@example.com",
        state="sent",
        attempts=1,
        sent_at=NOW,
    )

    page = notifications_page(otto)

    failed_section = page[page.index("Failed notices (1)") : page.index('id="channels-heading"')]
    assert error in failed_section and "gone@example.com" in failed_section
    assert "oncall@example.com" not in failed_section
    assert page.index("Failed notices (1)") < page.index("Recent notices")
    ledger = page[page.index("Recent notices") :]
    assert ledger.count("<tr>") == 3  # header and both notices
    assert "2026-06-01 12:00" in ledger  # sent_at

    app_page = html.unescape(otto.get(url("application", "frontend")).content.decode())
    assert "1 channel (1 enabled)" in app_page
    assert (
        '<a href="/apps/frontend/notifications/#failed" class="badge badge-expired">1 failed notice</a>'
        in app_page
    )
    assert "Configure notifications" in app_page


# --- thresholds -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entered", "message"),
    [
        ("30, 0", "'0' is not a number of days between 1 and 3650"),
        ("30, 4000", "'4000' is not a number of days between 1 and 3650"),
        ("30, soon", "'soon' is not a whole number of days between 1 and 3650"),
    ],
)
def test_bad_thresholds_are_refused_with_the_reason(otto, frontend_app, entered, message):
    response = otto.post(url("application-thresholds", "frontend"), {"thresholds": entered})

    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    frontend_app.refresh_from_db()
    assert frontend_app.notice_thresholds == []


def test_thresholds_are_set_per_application_and_emptied_back_to_the_default(otto, frontend_app):
    response = otto.post(url("application-thresholds", "frontend"), {"thresholds": "7 30\n1, 7"}, follow=True)

    frontend_app.refresh_from_db()
    assert frontend_app.notice_thresholds == [30, 7, 1]
    assert page_messages(response) == ["Notices now go out 30, 7, 1 days before expiry."]
    assert "<strong>30, 7, 1 days</strong> left (set for this application)" in html.unescape(
        response.content.decode()
    )

    otto.post(url("application-thresholds", "frontend"), {"thresholds": ""})

    frontend_app.refresh_from_db()
    assert frontend_app.notice_thresholds == []
    assert "<strong>60, 30, 14, 7, 1 days</strong> left (the global default)" in notifications_page(otto)


# --- mute -----------------------------------------------------------------------------------------


def test_the_owner_mutes_a_certificate_until_a_day_and_unmutes_it(otto, frontend_app, store, leaf):
    cert = store(leaf.pem)

    response = otto.post(
        url("certificate-mute", cert.pk), {"muted_until": "2026-07-01", "action": "mute"}, follow=True
    )

    cert.refresh_from_db()
    assert cert.muted_until == datetime(2026, 7, 1, tzinfo=UTC)
    assert page_messages(response) == [
        "Expiry notices for this certificate are muted until 2026-07-01 00:00 UTC."
    ]
    assert (
        "Notices muted until" in response.content.decode()
        and "2026-07-01 00:00</time> UTC" in response.content.decode()
    )
    assert (
        AuditEvent.objects.get(certificate=cert, action="certificate_changed").detail
        == "expiry notices muted until 2026-07-01 00:00 UTC"
    )

    otto.post(url("certificate-mute", cert.pk), {"action": "unmute"})

    cert.refresh_from_db()
    assert cert.muted_until is None
    assert "Notices muted until" not in otto.get(url("certificate", cert.pk)).content.decode()


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        ("2026-05-31", "The end of the mute must be in the future."),
        ("2026-06-01", "The end of the mute must be in the future."),  # 00:00 today has passed
        ("2027-06-02", "Notices can be muted for at most 365 days."),
        ("", "Choose the day until which notices are muted."),
        ("tomorrow", "Enter a valid date."),
    ],
)
def test_a_mute_in_the_past_or_too_far_ahead_is_refused(otto, frontend_app, store, leaf, day, reason):
    cert = store(leaf.pem)

    response = otto.post(
        url("certificate-mute", cert.pk), {"muted_until": day, "action": "mute"}, follow=True
    )

    assert page_messages(response) == [f"Notices were not muted: {reason}"]
    cert.refresh_from_db()
    assert cert.muted_until is None


def test_an_unexpected_failure_while_sending_is_an_error_message_not_a_500(otto, frontend_app, monkeypatch):
    create(otto, "slack", name="slack", url=SLACK_URL)
    row = NotificationChannel.objects.get(name="slack")

    def explode(self, message, recipient=""):
        raise RuntimeError(f"boom at {SLACK_URL}")

    monkeypatch.setattr(channels.SlackChannel, "send", explode)
    response = otto.post(url("notification-channel-test", "frontend", row.pk), follow=True)

    assert response.status_code == 200
    assert page_messages(response)[-1] == (
        "The test notice through 'slack' failed (fix the channel's configuration): "
        "unexpected error (RuntimeError)."
    )
    assert "slackTokenXyz123" not in response.content.decode()


def test_an_admin_manages_any_application(client, admin_user, frontend_app):
    client.force_login(admin_user)

    assert client.get(url("notification-channel-new", "frontend") + "?kind=teams").status_code == 200
    assert create(client, "email", name="admins", addresses="ops@example.com").status_code == 302
