"""Expiry notices from the ledger to real receivers: crossing, no repeats, renewal, mute, retries,
health transitions. An SMTP server and an HTTPS webhook on 127.0.0.1 count what arrives."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import time_machine

from certmgr.healthcheck import runner as healthchecks
from certmgr.inventory.keys import seal
from certmgr.notifications import ledger as notify
from certmgr.notifications.models import Notice, NotificationChannel
from tests import certs

pytestmark = pytest.mark.django_db

SECRET = "hmac-secret-for-tests"


def days_before_expiry(days: float):
    return certs.EXPIRES - timedelta(days=days)


@pytest.fixture
def owner_with_email(owner):
    owner.email = "otto@example.com"
    owner.save()
    return owner


@pytest.fixture
def channels(frontend_app, owner_with_email, smtp, webhook):
    """'frontend' notifies by email (Otto and the on-call list) and by a signed webhook."""
    email = NotificationChannel.objects.create(
        application=frontend_app,
        kind="email",
        name="team mail",
        options={"include_owners": True, "addresses": ["oncall@example.com"]},
    )
    hook = NotificationChannel.objects.create(
        application=frontend_app,
        kind="webhook",
        name="ops webhook",
        sealed_secret=seal(json.dumps({"url": webhook.url + "/notices", "secret": SECRET}).encode()),
    )
    return email, hook


@pytest.fixture
def stored(store, frontend_app):
    return store(certs.issue("frontend-app (P000042)", key_slot=3, serial=0x8001).pem, frontend_app)


def run_at(instant):
    with time_machine.travel(instant, tick=False):
        return notify.plan(instant), notify.deliver(instant)


def test_a_crossed_threshold_reaches_every_recipient_once(channels, stored, smtp, webhook):
    planned, sent = run_at(days_before_expiry(29))

    assert planned == 3 and sent == {"sent": 3}  # Otto, on-call, the webhook
    assert sorted(r for mail in smtp.mails for r in mail.recipients) == [
        "oncall@example.com",
        "otto@example.com",
    ]
    mail = smtp.mails[0]
    assert mail.subject == "[IAS certificates] Frontend: certificate expires in 29 days"
    notice = Notice.objects.get(recipient=mail.recipients[0])
    assert mail.message["X-Certmgr-Notice-Id"] == str(notice.pk)  # the same in a repeat: deduplicable
    assert mail.message["Message-ID"].startswith(f"<notice-{notice.pk}@")
    text = mail.message.get_body(("plain",)).get_content()
    assert "expires on 2027-01-15 09:00 UTC: 29 days left (threshold: 30 days)" in text
    assert "IAS tenant:  mytenant.accounts.ondemand.com" in text
    assert "/apps/frontend/rotation/" in text  # the rotation page, with its steps (test_rotation_notices.py)
    assert "1. Register the new certificate: Create a new service key" in text
    [delivery] = webhook.deliveries
    body = json.loads(delivery.body)
    assert body["event"] == "threshold" and body["threshold"] == 30
    expected = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["X-Certmgr-Signature"] == f"sha256={expected}"

    assert run_at(days_before_expiry(28)) == (0, {})  # a second run: nothing new, nothing again
    assert len(smtp.mails) == 2 and len(webhook.deliveries) == 1


def test_a_skipped_week_sends_only_the_most_urgent_notice(channels, stored, smtp):
    run_at(days_before_expiry(31))  # crosses 60
    smtp.mails.clear()

    run_at(days_before_expiry(6))  # 30, 14 and 7 crossed since

    assert {mail.subject for mail in smtp.mails} == {
        "[IAS certificates] Frontend: certificate expires in 6 days"
    }
    assert set(Notice.objects.values_list("threshold", flat=True)) == {60, 7}


def test_an_expired_certificate_gets_one_expired_notice(channels, stored, smtp):
    run_at(certs.AFTER_EXPIRY)
    run_at(certs.AFTER_EXPIRY + timedelta(days=2))

    assert [mail.subject for mail in smtp.mails] == ["[IAS certificates] Frontend: certificate EXPIRED"] * 2
    assert (
        "EXPIRED on 2027-01-15 09:00 UTC (3 days ago)"
        in smtp.mails[0].message.get_body(("plain",)).get_content()
    )


def test_a_renewal_stops_the_notices_and_says_so_once(channels, stored, store, frontend_app, smtp, webhook):
    run_at(days_before_expiry(20))
    renewed = certs.issue(
        "frontend-app (P000042)", key_slot=3, serial=0x8002, not_after=certs.EXPIRES + timedelta(days=365)
    )
    store(renewed.pem, frontend_app)
    smtp.mails.clear()

    run_at(days_before_expiry(5))  # the old one crossed 7 days, but it has been replaced
    run_at(days_before_expiry(4))

    assert [mail.subject for mail in smtp.mails] == ["[IAS certificates] Frontend: certificate renewed"] * 2
    assert Notice.objects.filter(event="resolved").count() == 3
    assert not Notice.objects.filter(threshold=7).exists()


def test_a_mute_is_honoured_until_it_ends(channels, stored, smtp):
    stored.muted_until = days_before_expiry(10)
    stored.save()

    run_at(days_before_expiry(20))
    assert smtp.mails == []

    run_at(days_before_expiry(9))
    assert [mail.subject for mail in smtp.mails] == [
        "[IAS certificates] Frontend: certificate expires in 9 days"
    ] * 2


def test_a_failing_webhook_is_retried_with_backoff_then_sent(channels, stored, webhook):
    webhook.script.statuses = [500, 503]
    start = days_before_expiry(29)

    run_at(start)
    notice = Notice.objects.get(channel__kind="webhook")
    assert (notice.state, notice.attempts) == ("pending", 1)
    assert notice.next_attempt_at == start + timedelta(minutes=1)
    assert "HTTP 500" in notice.last_error

    assert run_at(start + timedelta(seconds=30))[1] == {}  # not yet due again
    run_at(start + timedelta(minutes=1))  # 503: next try in 2 minutes
    run_at(start + timedelta(minutes=3))

    notice.refresh_from_db()
    assert (notice.state, notice.attempts) == ("sent", 3)
    assert [json.loads(d.body)["threshold"] for d in webhook.deliveries] == [30, 30, 30]


def test_a_refused_webhook_stops_and_shows_why(channels, stored, webhook):
    webhook.script.statuses = [403]
    run_at(days_before_expiry(29))
    run_at(days_before_expiry(28))

    notice = Notice.objects.get(channel__kind="webhook")
    assert notice.state == "failed" and notice.attempts == 1
    assert (
        "403" in notice.last_error and SECRET not in notice.last_error and "/notices" not in notice.last_error
    )
    assert len(webhook.deliveries) == 1


@pytest.mark.usefixtures("mid_life")
def test_health_check_failure_and_recovery_are_notified_once_each(channels, checked_app, ias, smtp):
    checked_app.refresh_from_db()
    assert healthchecks.run_check(checked_app, trigger="manual", actor_label="otto").ok
    ias.unregister(checked_app.client_id)
    healthchecks.run_check(checked_app, trigger="manual", actor_label="otto")
    healthchecks.run_check(checked_app, trigger="manual", actor_label="otto")  # still failing: no new notice
    ias.register(checked_app.client_id, checked_app.certificates.get().pem)
    healthchecks.run_check(checked_app, trigger="manual", actor_label="otto")

    notify.deliver(certs.MID_LIFE)

    assert sorted(mail.subject for mail in smtp.mails) == sorted(
        ["[IAS certificates] Frontend: token-flow health check failing at token"] * 2
        + ["[IAS certificates] Frontend: token-flow health check healthy again"] * 2
    )


# --- the daily digest -----------------------------------------------------------------------------


def test_the_daily_digest_goes_out_once_a_day_to_those_who_asked(owner_with_email, viewer, stored, smtp):
    from certmgr.notifications.models import UserPreference

    UserPreference.objects.create(user=owner_with_email, daily_digest=True)
    viewer.email = "vera@example.com"
    viewer.save()
    UserPreference.objects.create(user=viewer, daily_digest=True)  # owns nothing: no digest
    morning = days_before_expiry(20).replace(hour=6, minute=0)

    run_at(morning)  # before CERTMGR_DIGEST_HOUR (07:00 UTC)
    assert smtp.mails == []
    run_at(morning.replace(hour=8))
    run_at(morning.replace(hour=18))
    run_at(morning.replace(hour=8) + timedelta(days=1))

    assert [mail.recipients for mail in smtp.mails] == [["otto@example.com"], ["otto@example.com"]]
    assert smtp.mails[0].subject == "[IAS certificates] Daily digest: 1 certificate expiring within 60 days"
    text = smtp.mails[0].message.get_body(("plain",)).get_content()
    assert "- Frontend: 2027-01-15 09:00 (20 days left)" in text
