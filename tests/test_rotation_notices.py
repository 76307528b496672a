"""An expiry notice leads to the rotation page and lists the same steps, for the tool the application
is deployed with and with its names (mail to a real SMTP server on 127.0.0.1)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine

from certmgr.models import Application
from certmgr.notifications import ledger
from certmgr.notifications.models import NotificationChannel
from tests import certs

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailed(frontend_app, store, leaf, smtp, settings):
    settings.CERTMGR_PORTAL_URL = "https://certs.example.com"
    store(leaf.pem)
    NotificationChannel.objects.create(
        application=frontend_app, kind="email", name="mail", options={"addresses": ["ops@example.com"]}
    )

    def at(days_left: int):
        when = certs.EXPIRES - timedelta(days=days_left)
        with time_machine.travel(when, tick=False):
            ledger.plan(when)
            ledger.deliver(when)
        mail = smtp.mails[-1]
        text = mail.message.get_body(("plain",)).get_content().replace("\r\n", "\n")
        return text, mail.message.get_body(("html",)).get_content()

    return at


def numbered(text: str) -> list[str]:
    return re.findall(r"^\d\. (.+?):", text, re.M)


def test_the_notice_links_the_rotation_page_and_lists_the_cf_key_steps_by_default(mailed):
    text, html = mailed(29)

    assert "https://certs.example.com/apps/frontend/rotation/" in text
    assert 'href="https://certs.example.com/apps/frontend/rotation/"' in html
    assert "Then, with cf CLI: a new service key:" in text
    assert numbered(text) == [
        "Register the new certificate",
        "Verify the new certificate",
        "Switch the application",
        "Verify",
        "Retire the old certificate",
    ]
    assert "   cf create-service-key frontend-ias frontend-ias-key-next -c params.json\n" in text
    assert "   cf delete-service-key frontend-ias frontend-ias-key -f\n" in text
    assert "bind-service" not in text  # no step binds an app that is bound already
    assert "Run the health check with the new certificate, restage" not in text  # the old, impossible step


def test_the_steps_follow_the_applications_tool_and_names(mailed, frontend_app):
    Application.objects.filter(pk=frontend_app.pk).update(
        deploy_tool="cf-app", cf_app_name="frontend-web", cf_service_instance="frontend-identity"
    )

    text, html = mailed(29)

    assert "Then, with cf CLI: the app's binding (unbind, bind, restage):" in text
    assert (
        "   cf unbind-service frontend-web frontend-identity\n"
        "   cf bind-service frontend-web frontend-identity -c params.json\n"
    ) in text
    assert "A short gap: IAS drops the old certificate with the old binding" in text
    assert "<pre>cf restage frontend-web</pre>" in html
