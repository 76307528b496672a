"""Notification channels deliver a Message to real servers on 127.0.0.1 and say whether a retry helps.

The suite's receivers (tests/receivers.py: an aiosmtpd server and an HTTPS endpoint trusted through
CERTMGR_CA_BUNDLE) record what arrives; signatures are checked here with code of the test's own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote_plus

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from certmgr.core.notices import Message
from certmgr.inventory.keys import seal
from certmgr.notifications import channels, ledger, messages
from certmgr.notifications.channels import (
    AlertNotificationChannel,
    ChannelError,
    EmailChannel,
    SlackChannel,
    TeamsChannel,
    WebhookChannel,
    channel_for,
    recipients,
)
from certmgr.notifications.channels.alert_notification import ans_event
from certmgr.notifications.models import NotificationChannel
from portal.vcap import smtp_credentials
from tests import certs
from tests.receivers import free_port

MESSAGE = Message(
    event="threshold",
    subject="Frontend: client certificate expires in 20 days",
    text=(
        "The certificate CN=frontend-app (P000042) of Frontend expires on 2027-01-15 09:00 UTC "
        "(20 days left).\nSteps: upload the new certificate & register it in IAS <tenant>."
    ),
    html="<p>The certificate of <b>Frontend</b> expires on 2027-01-15 09:00 UTC (20 days left).</p>",
    application="Frontend",
    application_slug="frontend",
    tenant="mytenant.accounts.ondemand.com",
    certificate_subject="CN=frontend-app (P000042),O=Example Corp,C=DE",
    fingerprint="ab" * 32,
    not_after=certs.EXPIRES,
    days_left=20,
    threshold=30,
    link="https://portal.example.com/applications/frontend/",
    severity="warning",
    notice_id="4711",
)
SLACK_PATH = "/services/T0001/B0002/hook-credential-9f8e7d"
HMAC_SECRET = "whsec-5b1c0c2e-do-not-leak"


# --- the real SMTP server (the suite's, tests/receivers.py) ---------------------------------------------


@pytest.fixture
def smtp(smtp, settings):
    """The suite's SMTP webhook, with a short timeout and the portal's sender."""
    settings.EMAIL_TIMEOUT = 2
    settings.DEFAULT_FROM_EMAIL = "IAS certificate portal <certportal@example.com>"
    return smtp


def failure(channel, message=MESSAGE, recipient="") -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        channel.send(message, recipient)
    return caught.value


def test_email_arrives_with_subject_text_and_html_from_the_configured_sender(smtp):
    EmailChannel().send(MESSAGE, "otto@example.com")

    [arrived] = smtp.mails
    assert arrived.recipients == ["otto@example.com"]
    mail = arrived.message
    assert mail["Subject"] == MESSAGE.subject
    assert mail["From"] == "IAS certificate portal <certportal@example.com>"
    assert mail["To"] == "otto@example.com"
    assert mail.get_content_type() == "multipart/alternative"
    assert text_of(mail, "plain") == MESSAGE.text
    assert text_of(mail, "html") == MESSAGE.html


def text_of(mail, subtype: str) -> str:
    return mail.get_body((subtype,)).get_content().replace("\r\n", "\n").strip()


def test_email_a_recipient_refused_with_5xx_is_permanent(smtp):
    smtp.refuse = {"gone@example.com": "550 5.1.1 <gone@example.com>: Recipient address rejected"}

    error = failure(EmailChannel(), recipient="gone@example.com")

    assert error.retryable is False
    assert "refused gone@example.com: 550" in str(error)
    assert smtp.mails == []


def test_email_a_recipient_deferred_with_4xx_is_retryable(smtp):
    smtp.refuse = {"busy@example.com": "450 4.2.1 Mailbox busy, try again later"}

    error = failure(EmailChannel(), recipient="busy@example.com")

    assert error.retryable is True
    assert "450" in str(error)


def test_email_with_the_mail_server_down_is_retryable(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2

    error = failure(EmailChannel(), recipient="otto@example.com")

    assert error.retryable is True
    assert "ConnectionRefusedError" in str(error)


def test_email_without_an_address_is_permanent():
    assert failure(EmailChannel(), recipient="").retryable is False


# --- the real HTTPS receiver (the suite's, tests/receivers.py) ------------------------------------------


@pytest.fixture
def webhook(webhook, settings):
    """The suite's HTTPS receiver, trusted through CERTMGR_CA_BUNDLE, over https only, short timeouts."""
    settings.CERTMGR_ALLOW_HTTP_LOOPBACK = False
    settings.CERTMGR_HEALTHCHECK_CONNECT_TIMEOUT = 2
    settings.CERTMGR_HEALTHCHECK_READ_TIMEOUT = 2
    return webhook


def test_webhook_posts_the_notice_as_json_signed_with_the_channel_secret(webhook):
    WebhookChannel(webhook.url + "/hooks/certs", HMAC_SECRET).send(MESSAGE)

    [delivery] = webhook.deliveries
    assert delivery.path == "/hooks/certs"
    assert delivery.headers["Content-Type"] == "application/json"
    expected = hmac.new(HMAC_SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    signature = delivery.headers["X-Certmgr-Signature"]
    assert signature.startswith("sha256=")
    assert hmac.compare_digest(signature.removeprefix("sha256="), expected)
    payload = delivery.json()
    # The timestamp is signed with the body, so a replayed body shows its age.
    assert str(payload["timestamp"]) == delivery.headers["X-Certmgr-Timestamp"]
    assert abs(payload["timestamp"] - time.time()) < 60
    assert payload == {
        "event": "threshold",
        "subject": MESSAGE.subject,
        "text": MESSAGE.text,
        "application": {"name": "Frontend", "slug": "frontend", "tenant": "mytenant.accounts.ondemand.com"},
        "certificate": {
            "subject": "CN=frontend-app (P000042),O=Example Corp,C=DE",
            "fingerprint": "ab" * 32,
            "not_after": "2027-01-15T09:00:00Z",
            "days_left": 20,
        },
        "threshold": 30,
        "severity": "warning",
        "link": "https://portal.example.com/applications/frontend/",
        "timestamp": payload["timestamp"],
        "notice_id": "4711",
    }
    assert delivery.headers["X-Certmgr-Notice-Id"] == "4711"


def test_webhook_signature_does_not_verify_with_another_secret(webhook):
    WebhookChannel(webhook.url + "/hooks/certs", HMAC_SECRET).send(MESSAGE)

    [delivery] = webhook.deliveries
    forged = hmac.new(b"another secret", delivery.body, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(delivery.headers["X-Certmgr-Signature"], f"sha256={forged}")


def test_slack_gets_the_subject_as_text_and_blocks_with_the_message_and_a_link_button(webhook):
    SlackChannel(webhook.url + SLACK_PATH).send(MESSAGE)

    [delivery] = webhook.deliveries
    assert delivery.path == SLACK_PATH
    payload = delivery.json()
    assert payload["text"] == MESSAGE.subject
    kinds = [block["type"] for block in payload["blocks"]]
    assert kinds == ["header", "section", "actions", "context"]
    section = payload["blocks"][1]["text"]
    assert section["type"] == "mrkdwn"
    assert "expires on 2027-01-15 09:00 UTC (20 days left)" in section["text"]
    assert "&amp; register it in IAS &lt;tenant&gt;" in section["text"]  # Slack's markup, escaped
    [button] = payload["blocks"][2]["elements"]
    assert button["type"] == "button"
    assert button["url"] == MESSAGE.link
    assert payload["blocks"][3]["elements"][0]["text"] == "notice 4711"  # for deduplication
    assert delivery.headers["X-Certmgr-Notice-Id"] == "4711"


def test_teams_gets_an_adaptive_card_with_the_facts_and_a_link(webhook):
    TeamsChannel(webhook.url + "/workflows/abc/triggers/manual/paths/invoke?sig=teams-sig-123").send(MESSAGE)

    [delivery] = webhook.deliveries
    payload = delivery.json()
    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    title, factset, steps, notice = card["body"]
    assert notice["text"] == "notice 4711" and delivery.headers["X-Certmgr-Notice-Id"] == "4711"
    assert title["type"] == "TextBlock"
    assert title["text"] == MESSAGE.subject
    assert factset["type"] == "FactSet"
    assert {fact["title"]: fact["value"] for fact in factset["facts"]} == {
        "Application": "Frontend",
        "Tenant": "mytenant.accounts.ondemand.com",
        "Certificate": "CN=frontend-app (P000042),O=Example Corp,C=DE",
        "Expires (UTC)": "2027-01-15 09:00",
        "Days left": "20",
    }
    assert steps["type"] == "TextBlock"
    assert steps["text"] == MESSAGE.text
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open in the portal", "url": MESSAGE.link}]


# --- SAP Alert Notification service -------------------------------------------------------------------

ANS_CLIENT_ID = "sb-certportal!b42|ans-xsuaa!b1"
ANS_CLIENT_SECRET = "ans-client-secret+/=zz"


def token_answer(token: str, expires_in: int = 43199) -> tuple[int, bytes, dict]:
    body = json.dumps({"access_token": token, "token_type": "bearer", "expires_in": expires_in}).encode()
    return 200, body, {"Content-Type": "application/json"}


def ans(webhook) -> AlertNotificationChannel:
    return AlertNotificationChannel(
        webhook.url + "/ans", webhook.url + "/oauth/token", ANS_CLIENT_ID, ANS_CLIENT_SECRET
    )


def test_alert_notification_gets_a_token_then_posts_the_resource_event_and_reuses_the_token(webhook):
    webhook.answer(token_answer("access-token-1"), (202, b"{}", {}), (202, b"{}", {}))

    ans(webhook).send(MESSAGE)
    ans(webhook).send(MESSAGE)  # a new instance, as the engine builds them: the token is kept

    token_request, first, second = webhook.deliveries
    assert token_request.path == "/oauth/token"
    scheme, credentials = token_request.headers["Authorization"].split(" ", 1)
    assert scheme == "Basic"
    client_id, client_secret = base64.b64decode(credentials).decode().split(":", 1)
    assert (unquote_plus(client_id), unquote_plus(client_secret)) == (ANS_CLIENT_ID, ANS_CLIENT_SECRET)
    assert parse_qs(token_request.body.decode()) == {"grant_type": ["client_credentials"]}
    assert first.path == second.path == "/ans/cf/producer/v1/resource-events"
    assert first.headers["Authorization"] == second.headers["Authorization"] == "Bearer access-token-1"
    event = first.json()
    assert abs(event.pop("eventTimestamp") - time.time()) < 60
    assert event == {
        "eventType": "IASCertificateExpiring",
        "severity": "WARNING",
        "category": "ALERT",
        "subject": MESSAGE.subject,
        "body": MESSAGE.text,
        "resource": {
            "resourceName": "frontend",
            "resourceType": "ias-application",
            "tags": {"tenant": "mytenant.accounts.ondemand.com", "fingerprint": "ab" * 32},
        },
        "tags": {
            "ans:correlationId": "frontend:" + "ab" * 32,
            "ans:detailsLink": MESSAGE.link,
            "event": "threshold",
            "threshold": "30",
            "certmgr:noticeId": "4711",
        },
    }


@pytest.mark.parametrize(
    ("event", "severity", "event_type", "category"),
    [
        ("expired", "critical", "IASCertificateExpired", "ALERT"),
        ("resolved", "info", "IASCertificateRenewed", "NOTIFICATION"),
        ("health_failed", "error", "IASHealthCheckFailed", "ALERT"),
        ("health_recovered", "info", "IASHealthCheckRecovered", "NOTIFICATION"),
    ],
)
def test_alert_notification_event_type_severity_and_category_follow_the_event(
    event, severity, event_type, category
):
    payload = ans_event(replace(MESSAGE, event=event, severity=severity), 1_800_000_000)
    assert (payload["eventType"], payload["category"]) == (event_type, category)
    assert payload["severity"] == {"critical": "FATAL", "info": "INFO", "error": "ERROR"}[severity]
    assert payload["eventTimestamp"] == 1_800_000_000


def test_alert_notification_asks_for_a_new_token_shortly_before_the_old_one_expires(webhook):
    webhook.answer(token_answer("short-lived", expires_in=300), 202, token_answer("next"), 202)

    with time_machine.travel(certs.MID_LIFE, tick=False) as clock:
        ans(webhook).send(MESSAGE)
        clock.shift(timedelta(seconds=250))  # 50 s left: too close to use
        ans(webhook).send(MESSAGE)

    paths = [delivery.path for delivery in webhook.deliveries]
    assert paths == ["/oauth/token", "/ans/cf/producer/v1/resource-events"] * 2
    assert webhook.deliveries[3].headers["Authorization"] == "Bearer next"


def test_alert_notification_retries_once_with_a_new_token_when_the_kept_one_is_refused(webhook):
    webhook.answer(token_answer("revoked"), 202, 401, token_answer("fresh"), 202)
    ans(webhook).send(MESSAGE)

    ans(webhook).send(MESSAGE)

    bearers = [
        delivery.headers["Authorization"]
        for delivery in webhook.deliveries
        if "resource-events" in delivery.path
    ]
    assert bearers == ["Bearer revoked", "Bearer revoked", "Bearer fresh"]


def test_alert_notification_with_refused_client_credentials_is_permanent(webhook, caplog):
    caplog.set_level(logging.DEBUG)
    webhook.answer((401, b'{"error":"unauthorized"}', {}))

    error = failure(ans(webhook))

    assert error.retryable is False
    assert str(error) == "localhost refused the token request (HTTP 401)."
    assert [delivery.path for delivery in webhook.deliveries] == ["/oauth/token"]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert ANS_CLIENT_SECRET not in logged and ANS_CLIENT_SECRET not in str(error)


def test_alert_notification_token_is_never_logged_or_shown(webhook, caplog):
    caplog.set_level(logging.DEBUG)
    webhook.answer(token_answer("bearer-secret-77"), 500)

    error = failure(ans(webhook))

    assert error.retryable is True
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "bearer-secret-77" not in logged + str(error)


# --- what a failure says, and whether a retry helps ----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (500, True),
        (502, True),
        (503, True),
        (408, True),
        (429, True),
        (400, False),
        (403, False),
        (404, False),
    ],
)
def test_http_status_decides_whether_a_retry_can_help(webhook, caplog, status, retryable):
    caplog.set_level(logging.DEBUG)
    webhook.answer(status)

    error = failure(SlackChannel(webhook.url + SLACK_PATH))

    assert error.retryable is retryable
    assert f"(HTTP {status})" in str(error)
    assert str(error).startswith("localhost ")
    assert_no_secret(str(error), caplog)


def test_a_refusal_word_from_slack_is_shown(webhook):
    webhook.answer((404, b"no_service", {}))

    error = failure(SlackChannel(webhook.url + SLACK_PATH))

    assert str(error) == "localhost refused the notice (HTTP 404: no_service)."


def test_a_redirect_is_not_followed_and_is_permanent(webhook, caplog):
    caplog.set_level(logging.DEBUG)
    webhook.answer((302, b"", {"Location": webhook.url + "/elsewhere" + SLACK_PATH}))

    error = failure(SlackChannel(webhook.url + SLACK_PATH))

    assert error.retryable is False
    assert "redirect" in str(error)
    assert len(webhook.deliveries) == 1
    assert_no_secret(str(error), caplog)


def test_a_receiver_too_slow_to_answer_is_retryable(webhook, settings):
    settings.CERTMGR_HEALTHCHECK_READ_TIMEOUT = 0.3
    webhook.delay = 0.6

    error = failure(TeamsChannel(webhook.url + "/workflows/abc?sig=teams-sig-123"))

    assert error.retryable is True
    assert "did not answer within 0.3 s" in str(error)


def test_nothing_listening_is_retryable(webhook, caplog):
    caplog.set_level(logging.DEBUG)

    error = failure(SlackChannel(f"https://localhost:{free_port()}{SLACK_PATH}"))

    assert error.retryable is True
    assert "refused" in str(error)
    assert_no_secret(str(error), caplog)


def test_an_untrusted_server_certificate_is_permanent(webhook, settings):
    settings.CERTMGR_CA_BUNDLE = ""

    error = failure(SlackChannel(webhook.url + SLACK_PATH))

    assert error.retryable is False
    assert "not trusted" in str(error)
    assert webhook.deliveries == []


def test_a_plain_http_url_is_refused_without_quoting_it(webhook):
    error = failure(SlackChannel("http://hooks.example.com" + SLACK_PATH))

    assert error.retryable is False
    assert str(error) == "The URL of hooks.example.com is refused: only https URLs are allowed."


def test_webhook_urls_and_secrets_never_reach_the_logs(webhook, caplog):
    caplog.set_level(logging.DEBUG)

    SlackChannel(webhook.url + SLACK_PATH).send(MESSAGE)
    WebhookChannel(webhook.url + "/hooks/certs?token=query-credential-1", HMAC_SECRET).send(MESSAGE)

    assert len(webhook.deliveries) == 2
    # urllib3 logged both requests, with the paths hidden.
    requests = [
        r.getMessage() for r in caplog.records if r.name.startswith("urllib3") and "POST" in r.getMessage()
    ]
    assert len(requests) == 2
    assert all('"POST …' in line for line in requests)
    assert_no_secret("", caplog, "query-credential-1")


def assert_no_secret(text: str, caplog, *more: str) -> None:
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (SLACK_PATH, "hook-credential-9f8e7d", HMAC_SECRET, *more):
        assert secret not in text
        assert secret not in logged


# --- channels from rows, and who gets email --------------------------------------------------------------


def row(app, kind, secret=None, **options) -> NotificationChannel:
    sealed = seal(json.dumps(secret).encode()) if secret is not None else None
    return NotificationChannel.objects.create(
        application=app, kind=kind, name=kind, options=options, sealed_secret=sealed
    )


@pytest.mark.django_db
def test_channel_for_builds_each_kind_with_its_unsealed_secret(frontend_app, webhook):
    hook = channel_for(row(frontend_app, "webhook", {"url": webhook.url + "/hook", "secret": HMAC_SECRET}))
    slack = channel_for(row(frontend_app, "slack", {"url": webhook.url + SLACK_PATH}))
    teams = channel_for(row(frontend_app, "teams", webhook.url + "/teams"))  # a bare URL is accepted
    alerts = channel_for(
        row(
            frontend_app,
            "alert_notification",
            {"client_secret": ANS_CLIENT_SECRET},
            url="https://ans.example.com",
            token_url="https://sub.authentication.example.com/oauth/token",
            client_id=ANS_CLIENT_ID,
        )
    )

    assert isinstance(channel_for(row(frontend_app, "email")), EmailChannel)
    assert (type(hook), hook.url, hook.secret) == (
        WebhookChannel,
        webhook.url + "/hook",
        HMAC_SECRET,
    )
    assert (type(slack), slack.url) == (SlackChannel, webhook.url + SLACK_PATH)
    assert (type(teams), teams.url) == (TeamsChannel, webhook.url + "/teams")
    assert isinstance(alerts, AlertNotificationChannel)
    assert (alerts.client_id, alerts.client_secret) == (ANS_CLIENT_ID, ANS_CLIENT_SECRET)
    slack.send(MESSAGE)
    assert webhook.deliveries[0].path == SLACK_PATH


@pytest.mark.django_db
def test_channel_for_a_row_without_its_secret_or_options_is_a_permanent_error(frontend_app):
    broken = [
        row(frontend_app, "slack"),
        row(frontend_app, "webhook", {"url": "https://hooks.example.com/x"}),
        row(frontend_app, "alert_notification", {"client_secret": "s"}, url="https://ans.example.com"),
    ]
    for channel_row in broken:
        with pytest.raises(ChannelError) as caught:
            channel_for(channel_row)
        assert caught.value.retryable is False
        assert "hooks.example.com" not in str(caught.value)


@pytest.mark.django_db
def test_channel_for_reads_what_seal_secret_stores(frontend_app):
    channel_row = NotificationChannel.objects.create(
        application=frontend_app,
        kind="slack",
        name="ops",
        sealed_secret=channels.seal_secret("slack", url="https://hooks.slack.com" + SLACK_PATH),
    )
    assert channel_for(channel_row).url == "https://hooks.slack.com" + SLACK_PATH
    with pytest.raises(ValueError, match="keeps url, secret"):
        channels.seal_secret("webhook", url="https://x.example.com")


@pytest.mark.django_db
def test_email_recipients_are_owners_and_owner_group_members_plus_extra_addresses_once_each(
    frontend_app, owner, django_user_model
):
    operators = Group.objects.create(name="operators")
    frontend_app.owner_groups.add(operators)
    gus = django_user_model.objects.create_user("gus", "gus@example.com")
    nomail = django_user_model.objects.create_user("nomail", "")
    gone = django_user_model.objects.create_user("gone", "gone@example.com", is_active=False)
    for user in (gus, nomail, gone, owner):
        user.groups.add(operators)  # otto is owner and group member: still once
    channel_row = row(frontend_app, "email", addresses=["ops@example.com", "OTTO@example.com", " "])

    assert recipients(channel_row) == ["gus@example.com", "otto@example.com", "ops@example.com"]


@pytest.mark.django_db
def test_email_recipients_without_owners_are_the_extra_addresses_only(frontend_app):
    channel_row = row(frontend_app, "email", include_owners=False, addresses=["ops@example.com"])

    assert recipients(channel_row) == ["ops@example.com"]


@pytest.mark.django_db
def test_other_kinds_have_the_channel_itself_as_their_one_recipient(frontend_app):
    assert recipients(row(frontend_app, "slack", {"url": "https://hooks.slack.com/x"})) == [""]


@pytest.mark.django_db
def test_the_test_notice_names_the_application_and_its_next_expiry(frontend_app, store, leaf, smtp, settings):
    settings.CERTMGR_PORTAL_URL = "https://certs.example.com"
    store(leaf.pem)
    mail = row(frontend_app, "email", include_owners=False, addresses=["otto@example.com"])

    with time_machine.travel(certs.TWENTY_DAYS_BEFORE_EXPIRY, tick=False):
        test = ledger.send_test(mail)
        [notice] = test.sent
        message = messages.message_for(notice, timezone.now())

    assert (test.failed, notice.state, notice.event, notice.recipient) == (
        [],
        "sent",
        "test",
        "otto@example.com",
    )
    assert (message.event, message.severity, message.days_left) == ("test", "info", 20)
    assert message.not_after == certs.EXPIRES
    assert message.link == "https://certs.example.com/apps/frontend/"
    assert "test notice" in message.subject.lower()
    assert "Frontend" in message.text
    assert "2027-01-15 09:00 UTC (20 days left)" in message.text
    assert "<strong>Frontend</strong>" in message.html
    [sent] = smtp.mails
    assert "email channel of the application Frontend" in sent.message.get_body(("plain",)).get_content()


# --- SMTP from a user-provided service --------------------------------------------------------------------


def vcap(*services: dict) -> str:
    return json.dumps({"user-provided": list(services), "xsuaa": [{"label": "xsuaa", "name": "mail-uaa"}]})


def test_smtp_credentials_come_from_a_user_provided_service_tagged_smtp():
    service = {
        "label": "user-provided",
        "name": "portal-relay",
        "tags": ["SMTP"],
        "credentials": {
            "host": "smtp.example.com",
            "port": "2525",
            "username": "portal",
            "password": "relay-pass",
            "use_tls": "true",
            "from": "IAS certificates <certs@example.com>",
        },
    }
    other = {"label": "user-provided", "name": "logging", "tags": ["syslog"], "credentials": {"host": "x"}}

    assert smtp_credentials(vcap(other, service)) == {
        "host": "smtp.example.com",
        "port": 2525,
        "username": "portal",
        "password": "relay-pass",
        "use_tls": True,
        "use_ssl": False,
        "from": "IAS certificates <certs@example.com>",
    }


def test_smtp_credentials_are_found_by_name_and_default_the_port_to_the_tls_mode():
    implicit = {
        "label": "user-provided",
        "name": "portal-mail",
        "credentials": {"host": "m", "use_ssl": True},
    }
    plain = {"label": "user-provided", "name": "smtp", "credentials": {"hostname": "relay"}}

    assert smtp_credentials(vcap(implicit))["port"] == 465
    assert smtp_credentials(vcap(plain))["port"] == 25
    assert smtp_credentials(vcap(plain))["host"] == "relay"


@pytest.mark.parametrize("raw", [None, "", "  ", json.dumps({"user-provided": []})])
def test_smtp_credentials_without_a_mail_service_are_none(raw):
    assert smtp_credentials(raw) is None


def test_smtp_credentials_only_from_user_provided_services():
    managed = {"label": "smtp-relay", "name": "smtp", "credentials": {"host": "managed"}}
    assert smtp_credentials(json.dumps({"smtp-relay": [managed]})) is None


@pytest.mark.parametrize(
    ("credentials", "complaint"),
    [
        ({"port": 25}, "lacks the credential 'host'"),
        ({"host": "m", "use_tls": True, "use_ssl": True}, "both use_tls and use_ssl"),
        ({"host": "m", "use_tls": "maybe"}, "use_tls='maybe'"),
        ({"host": "m", "port": "smtp"}, "port 'smtp'"),
    ],
)
def test_smtp_credentials_that_make_no_sense_stop_startup(credentials, complaint):
    service = {"label": "user-provided", "name": "smtp", "credentials": credentials}
    with pytest.raises(ImproperlyConfigured, match=complaint):
        smtp_credentials(vcap(service))


def mail_settings(**env: str) -> list[str]:
    """EMAIL_HOST, EMAIL_PORT, EMAIL_USE_TLS and DEFAULT_FROM_EMAIL as a fresh process reads them."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EMAIL_", "VCAP_", "CERTMGR_MAIL"))}
    script = "from django.conf import settings as s; print(s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.DEFAULT_FROM_EMAIL, sep='|')"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=Path(__file__).resolve().parent.parent,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1].split("|")


RELAY = {
    "label": "user-provided",
    "name": "portal-smtp",
    "credentials": {"host": "relay.example.com", "use_tls": True},
}


def test_settings_take_the_mail_server_from_a_bound_smtp_service():
    assert mail_settings(VCAP_SERVICES=vcap(RELAY)) == [
        "relay.example.com",
        "587",
        "True",
        "IAS certificate portal <noreply@localhost>",
    ]


def test_settings_prefer_email_host_from_the_environment_over_a_bound_service():
    configured = mail_settings(
        VCAP_SERVICES=vcap(RELAY),
        EMAIL_HOST="mx.example.com",
        EMAIL_PORT="2525",
        CERTMGR_MAIL_FROM="certs@example.com",
    )
    assert configured == ["mx.example.com", "2525", "False", "certs@example.com"]
