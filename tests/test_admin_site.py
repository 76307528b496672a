"""The Django admin as Ada meets it: branded as the portal, the notification channels and the notice
ledger listed to look at (not to change), and no channel's secret or webhook URL on any page."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from certmgr.inventory import keys
from certmgr.notifications.models import Notice, NotificationChannel

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/slackTokenXyz123"


@pytest.fixture
def ada(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def slack(frontend_app):
    return NotificationChannel.objects.create(
        application=frontend_app,
        kind="slack",
        name="team chat",
        sealed_secret=keys.vault().encrypt(SLACK_URL.encode()),
    )


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return html.unescape(response.content.decode())


def test_the_admin_is_branded_as_the_portal(ada):
    index = page(ada, reverse("admin:index"))

    assert "<title>Users, roles and records | IAS certificate portal admin</title>" in index
    assert "IAS certificate portal · administration" in index
    assert "Django administration" not in index
    assert "Notification channels" in index and "Notices" in index


def test_channels_and_the_ledger_are_listed_read_only_without_secrets(ada, slack):
    notice = Notice.objects.create(application=slack.application, channel=slack, event="test", state="failed",
                                   last_error="HTTP 404 from hooks.slack.com")  # fmt: skip
    pages = [
        page(ada, reverse("admin:certmgr_notificationchannel_changelist")),
        page(ada, reverse("admin:certmgr_notificationchannel_change", args=[slack.pk])),
        page(ada, reverse("admin:certmgr_notice_changelist")),
        page(ada, reverse("admin:certmgr_notice_change", args=[notice.pk])),
    ]

    assert "team chat" in pages[0] and "HTTP 404 from hooks.slack.com" in pages[3]
    for text in pages:
        assert "slackTokenXyz123" not in text and "/services/" not in text
        assert 'name="_save"' not in text  # nothing to save: view only
    assert (
        ada.post(
            reverse("admin:certmgr_notificationchannel_change", args=[slack.pk]), {"name": "x"}
        ).status_code
        == 403
    )
    assert ada.get(reverse("admin:certmgr_notice_add")).status_code == 403
    slack.refresh_from_db()
    assert slack.name == "team chat"
