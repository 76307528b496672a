"""A `send_notifications` process killed while a receiver holds its notice: the notice is sent again
once its claim is stale (CERTMGR_NOTICE_CLAIM_MINUTES), and both deliveries carry the same notice
id, so the receiver can drop the repeat. At least once, never lost, and said so in the README."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.db import connection

from certmgr.inventory.keys import seal
from certmgr.notifications.models import Notice, NotificationChannel
from tests import certs
from tests.receivers import HttpsReceiver, SmtpReceiver
from tests.test_notify_concurrency import ROOT, process_env

NOW = certs.MID_LIFE


def send_notifications(env: dict, at, **popen) -> subprocess.Popen:
    command = [sys.executable, "manage.py", "send_notifications", "--now", at.isoformat(), "--json"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, **popen)


def finished(process: subprocess.Popen) -> dict:
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out
    return json.loads(out)


@pytest.mark.django_db(transaction=True)
def test_a_notice_whose_sender_was_killed_mid_send_arrives_again_with_the_same_id(
    frontend_app, store, tmp_path
):
    if connection.vendor != "postgresql":
        pytest.skip("needs a database two processes can share: runs in the PostgreSQL pass")
    app = frontend_app
    store(certs.issue("frontend", key_slot=3, not_after=NOW + timedelta(days=20)).pem, app)
    with SmtpReceiver() as smtp, HttpsReceiver(tmp_path) as webhook:
        NotificationChannel.objects.create(
            application=app,
            kind="webhook",
            name="hook",
            sealed_secret=seal(json.dumps({"url": webhook.url + "/n", "secret": "s" * 32}).encode()),
        )
        env = process_env(smtp, webhook)
        webhook.delay = 8.0  # the receiver holds the request: the sender is mid-send when killed

        sender = send_notifications(env, NOW)
        deadline = time.monotonic() + 60
        while not webhook.deliveries and time.monotonic() < deadline:
            time.sleep(0.05)
        sender.send_signal(signal.SIGKILL)
        sender.wait(timeout=30)
        webhook.delay = 0.0

        [notice] = Notice.objects.all()
        assert notice.state == "sending" and len(webhook.deliveries) == 1
        # A claim younger than CERTMGR_NOTICE_CLAIM_MINUTES (15) is left to its sender.
        assert finished(send_notifications(env, NOW + timedelta(minutes=10))).get("sent", 0) == 0
        assert len(webhook.deliveries) == 1
        # Older: its sender died; the notice goes out again, once.
        assert finished(send_notifications(env, NOW + timedelta(minutes=16))).get("sent") == 1
        assert finished(send_notifications(env, NOW + timedelta(minutes=30))).get("sent", 0) == 0

    notice.refresh_from_db()
    assert notice.state == "sent"
    first, second = webhook.deliveries
    ids = {delivery.headers["X-Certmgr-Notice-Id"] for delivery in (first, second)}
    assert ids == {str(notice.pk)}
    assert json.loads(first.body)["notice_id"] == json.loads(second.body)["notice_id"] == str(notice.pk)
