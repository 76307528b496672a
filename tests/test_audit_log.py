"""The audit log: parameter generation and health-check runs are recorded, and admins can read
and filter the log; nobody else can."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from certmgr import healthchecks
from certmgr.models import AuditEvent

pytestmark = pytest.mark.django_db


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_downloading_or_fetching_parameters_is_audited_with_who_and_where(client, owner, store, leaf):
    cert = store(leaf.pem)
    client.force_login(owner)

    client.get(reverse("certificate-binding", args=[cert.pk, "json"]), REMOTE_ADDR="192.0.2.10")
    client.get(
        reverse("api-certificate-binding", args=[cert.pk]) + "?format=cf&chain=1", REMOTE_ADDR="192.0.2.11"
    )

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
    healthchecks.run_due(workers=1)

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
