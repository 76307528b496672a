"""Owners set URLs the portal calls (notification channels, the protected backend): none may lead to
an internal target. Refused at save time in the form, and again when the call connects (the name
may resolve otherwise by then), with a named reason and no connection opened.

DNS is the suite's test resolver (``dns``); ``connects`` records every socket connect.
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from certmgr.healthcheck import runner
from certmgr.models import HealthCheckRun
from certmgr.notifications import ledger
from certmgr.notifications.channels import seal_secret
from certmgr.notifications.models import NotificationChannel

pytestmark = pytest.mark.django_db

HOOK = "hooks.example.net"

CLASSES = [
    ("127.0.0.1", "a loopback address"),
    ("169.254.169.254", "a link-local address"),
    ("10.0.0.7", "a private address"),
    ("192.168.1.20", "a private address"),
    ("fd00::1", "a unique-local address"),
    ("100.64.0.1", "a carrier-grade NAT address"),
    ("224.0.0.1", "a multicast address"),
    ("0.0.0.0", "an unspecified address"),  # noqa: S104 - an address under test, nothing binds
    ("::ffff:127.0.0.1", "a loopback address (IPv4 127.0.0.1 in IPv6 form)"),
]


def create_webhook(client, url):
    return client.post(
        reverse("notification-channel-new", args=["frontend"]),
        {"kind": "webhook", "name": "hook", "enabled": "on", "url": url, "secret": "s" * 32},
    )


def page_text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.mark.parametrize(("address", "named"), CLASSES)
def test_a_channel_url_resolving_to_an_internal_address_is_refused_at_save_time(
    otto, dns, connects, address, named
):
    dns[HOOK] = [address]

    response = create_webhook(otto, f"https://{HOOK}/incoming/tokenPath42")

    assert response.status_code == 200 and not NotificationChannel.objects.exists()
    text = page_text(response)
    assert f"it resolves to {address}, {named}" in text
    assert "CERTMGR_OUTBOUND_ALLOW" in text
    assert "tokenPath42" not in text  # the URL may be a credential: only its host is named
    assert connects == []


@pytest.mark.parametrize(
    "url",
    ["ftp://hooks.example.net/in", "https://user:pw@hooks.example.net/in", "gopher://hooks.example.net/"],
)
def test_other_schemes_and_credentials_in_the_url_are_refused_at_save_time(otto, url):
    response = create_webhook(otto, url)

    assert response.status_code == 200 and not NotificationChannel.objects.exists()
    assert "pw@" not in page_text(response)


@pytest.mark.parametrize("allow", [HOOK, "*.example.net", "10.0.0.0/8", "10.0.0.7"])
def test_the_allow_list_lets_an_internal_receiver_through(otto, dns, settings, allow):
    settings.CERTMGR_OUTBOUND_ALLOW = [allow]
    dns[HOOK] = ["10.0.0.7"]

    response = create_webhook(otto, f"https://{HOOK}/incoming")

    assert response.status_code == 302 and NotificationChannel.objects.count() == 1


def test_a_name_that_does_not_resolve_now_is_saved_and_checked_when_it_is_called(otto):
    response = create_webhook(otto, "https://hooks.invalid/incoming")

    assert response.status_code == 302


def test_a_channel_whose_name_now_resolves_inside_is_refused_when_it_sends(
    frontend_app, dns, connects, webhook, settings
):
    """Saved while public, the name later points at the portal's own network (DNS rebinding)."""
    settings.CERTMGR_OUTBOUND_ALLOW = []  # the receiver fixture's loopback allowance is gone
    row = NotificationChannel.objects.create(
        application=frontend_app,
        kind="webhook",
        name="hook",
        sealed_secret=seal_secret("webhook", url=f"https://{HOOK}:{webhook.port}/in", secret="s" * 32),
    )
    dns[HOOK] = ["127.0.0.1"]

    test = ledger.send_test(row)

    [(notice, retryable)] = test.failed
    assert notice.state == "failed" and not retryable  # a retry cannot help: fix the URL or the list
    assert "it resolves to 127.0.0.1, a loopback address" in notice.last_error
    assert webhook.deliveries == [] and ("127.0.0.1", webhook.port) not in connects


# --- the protected backend: the health check sends the access token there ------------------------


def test_a_backend_url_resolving_to_the_metadata_service_is_refused_at_save_time(otto, frontend_app, dns):
    dns["backend.example.com"] = ["169.254.169.254"]
    data = {
        "name": "Frontend",
        "slug": "frontend",
        "tenant_url": frontend_app.tenant_url,
        "client_id": frontend_app.client_id,
        "backend_url": "https://backend.example.com/hello",
    }

    response = otto.post(reverse("application-edit", args=["frontend"]), data)

    assert response.status_code == 200
    assert "it resolves to 169.254.169.254, a link-local address" in page_text(response)
    frontend_app.refresh_from_db()
    assert frontend_app.backend_url == ""


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("tenant_url", "ftp://mytenant.accounts.ondemand.com"),
        ("backend_url", "https://u:p@backend.example.com/"),
    ],
)
def test_tenant_and_backend_urls_take_https_only_and_no_credentials(otto, frontend_app, field, url):
    data = {"name": "Frontend", "slug": "frontend", field: url}

    response = otto.post(reverse("application-edit", args=["frontend"]), data)

    assert response.status_code == 200
    frontend_app.refresh_from_db()
    assert getattr(frontend_app, field) != url


def test_the_health_check_sends_no_token_to_a_backend_that_now_resolves_inside(
    checked_app, ias, dns, connects, settings, mid_life
):
    settings.CERTMGR_OUTBOUND_ALLOW = []
    port = urlsplit(ias.backend_url).port
    checked_app.backend_url = f"https://backend.example.com:{port}/hello"
    checked_app.save()
    dns["backend.example.com"] = ["127.0.0.1"]

    run = runner.run_check(checked_app, trigger=HealthCheckRun.Trigger.MANUAL, actor_label="otto")

    backend = next(step for step in run.steps if step["name"] == "backend")
    assert (run.failed_step, run.code) == ("backend", "address_not_allowed")
    assert "a loopback address" in backend["diagnosis"]
    assert ("127.0.0.1", port) not in connects  # the token went nowhere
