"""Four `send_notifications` processes at once against PostgreSQL: every notice arrives exactly
once, counted at the receivers (a real SMTP server and an HTTPS webhook on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from certmgr.inventory.keys import seal
from certmgr.models import Application
from certmgr.notifications.models import Notice, NotificationChannel
from tests import certs
from tests.receivers import HttpsReceiver, SmtpReceiver

ROOT = Path(__file__).resolve().parent.parent
NOW = certs.MID_LIFE
# Days left at NOW, spread over every threshold (60, 30, 14, 7, 1) and past expiry.
SPREAD = (-3, 0.5, 3, 10, 20, 45, 59, 200)  # 200: nothing due yet


def process_env(smtp: SmtpReceiver, webhook: HttpsReceiver) -> dict[str, str]:
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CERTMGR_ENCRYPTION_KEYS": ",".join(settings.CERTMGR_ENCRYPTION_KEYS),
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "DJANGO_DEBUG": "0",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "CERTMGR_CA_BUNDLE": str(webhook.ca_file),
        "CERTMGR_OUTBOUND_ALLOW": "localhost",  # the webhook receiver, on this machine
    }


@pytest.mark.django_db(transaction=True)
def test_four_processes_send_each_notice_exactly_once(store, owner, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("needs a database four processes can share: runs in the PostgreSQL pass")
    owner.email = "otto@example.com"
    owner.save()
    with SmtpReceiver() as smtp, HttpsReceiver(tmp_path) as webhook:
        due = 0
        for n in range(200):
            left = SPREAD[n % len(SPREAD)]
            app = Application.objects.create(name=f"App {n:03}", slug=f"app-{n:03}")
            app.owners.add(owner)
            store(
                certs.issue(
                    f"app-{n}", key_slot=3, serial=0x9000 + n, not_after=NOW + timedelta(days=left)
                ).pem,
                app,
            )
            NotificationChannel.objects.create(
                application=app, kind="email", name="mail", options={"addresses": ["oncall@example.com"]}
            )
            NotificationChannel.objects.create(
                application=app,
                kind="webhook",
                name="hook",
                sealed_secret=seal(json.dumps({"url": webhook.url + "/n", "secret": "s"}).encode()),
            )
            due += left <= 60

        command = [sys.executable, "manage.py", "send_notifications", "--now", NOW.isoformat(), "--json"]
        env = process_env(smtp, webhook)
        processes = [
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) for _ in range(4)
        ]
        outputs = [process.communicate(timeout=180)[0] for process in processes]

        assert [process.returncode for process in processes] == [0, 0, 0, 0], outputs
        rounds = [json.loads(out) for out in outputs]
        assert sum(r.get("sent", 0) for r in rounds) == due * 3
        assert sum(1 for r in rounds if r.get("sent")) >= 2, (
            "one process sent everything: no contention tested"
        )

        # Counted at the receivers: per certificate and recipient, one mail; per certificate, one call.
        mails = Counter(
            (mail.message.get_body(("plain",)).get_content().split("SHA-256:")[1].split()[0], rcpt)
            for mail in smtp.mails
            for rcpt in mail.recipients
        )
        assert len(mails) == due * 2 and set(mails.values()) == {1}
        hooks = Counter(json.loads(d.body)["certificate"]["fingerprint"] for d in webhook.deliveries)
        assert len(hooks) == due and set(hooks.values()) == {1}
        assert Notice.objects.filter(state="sent").count() == due * 3
