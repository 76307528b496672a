"""In headless Chromium: the drift panel with `./dev run`'s demo world. The Cloud Foundry stand-in
holds the demo certificate in demo-frontend's binding and a forgotten X509_GENERATED service key;
after a sync Otto sees the binding green and the forgotten key red, on the demo's page and on the
dashboard (20 days before the key expires, with a newer certificate active)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from certmgr.models import Application
from certmgr.sandbox import CF_SPACE, CF_USER, DEMO_CLIENT_ID, demo_world
from iasstandin.cfapi import World
from tests import certs

pytestmark = [pytest.mark.browser]

TENANT = "https://demo.accounts.ondemand.com"
DEMO = certs.issue(
    "demo-frontend (local stand-in)",
    key_slot=11,
    serial=0x5001,
    not_after=certs.EXPIRES + timedelta(days=365),
)
FORGOTTEN = certs.issue(
    "test-key-forgotten (generated)",
    key_slot=12,
    serial=0x5002,
    not_before=certs.EXPIRES - timedelta(days=30),
)
RED_BACKGROUND = "rgb(253, 228, 228)"  # --bad-bg of portal.css


@pytest.fixture
def demo_landscape(cloud_foundry, settings, store):
    """The demo application as `manage.py sandbox` makes it, and its Cloud Foundry, synced."""
    demo = Application.objects.create(
        name="Demo (local IAS stand-in)", slug="demo", tenant_url=TENANT, client_id=DEMO_CLIENT_ID
    )
    store(DEMO.key_pem() + DEMO.pem, demo, store_keys=True)
    world = demo_world(
        TENANT, DEMO_CLIENT_ID, DEMO.pem.decode(), FORGOTTEN.pem.decode(), FORGOTTEN.key_pem().decode()
    )
    cloud_foundry.reset()
    cloud_foundry.world = World.from_dict(world)
    cloud_foundry.add_user(CF_USER, "cf-scanner-pass", "space_developer", [CF_SPACE])
    settings.CERTMGR_CF_API = cloud_foundry.url
    settings.CERTMGR_CF_USERNAME, settings.CERTMGR_CF_PASSWORD = CF_USER, "cf-scanner-pass"
    settings.CERTMGR_CA_BUNDLE = str(cloud_foundry.ca_file)
    call_command("cf_sync", stdout=StringIO())
    yield demo
    cloud_foundry.reset()


def binding_row(page, text: str):
    return page.get_by_test_id("drift-panel").get_by_role("row").filter(has_text=text)


def test_the_drift_panel_shows_the_forgotten_key_red_and_the_binding_green(page, live_server, demo_landscape):
    page.goto(live_server.url + "/apps/demo/")

    panel = page.get_by_test_id("drift-panel")
    expect(panel.get_by_role("heading", name="In Cloud Foundry")).to_be_visible()
    expect(page.get_by_test_id("drift-count")).to_have_text("1 in drift")
    frontend = binding_row(page, "app demo-frontend")
    expect(frontend).to_contain_text("X509_PROVIDED")
    expect(frontend.locator(".badge")).to_have_text("in use")
    forgotten = binding_row(page, "service key test-key-forgotten")
    expect(forgotten).to_contain_text("X509_GENERATED")
    expect(forgotten.locator(".badge")).to_have_text("not rotated")
    expect(forgotten).to_contain_text("Expires in 20 days while a newer certificate is active in the portal")
    expect(forgotten.locator(".badge")).to_have_css("background-color", RED_BACKGROUND)
    expect(frontend.locator(".badge")).not_to_have_css("background-color", RED_BACKGROUND)
    expect(binding_row(page, "demo-xsuaa")).to_have_count(0)  # another offering: not there

    page.goto(live_server.url + "/")
    summary = page.get_by_test_id("landscape-summary")
    expect(summary.get_by_test_id("drift-total")).to_have_text("1 in drift")
    expect(summary.get_by_role("row").filter(has_text="test-key-forgotten").locator(".badge")).to_have_css(
        "background-color", RED_BACKGROUND
    )
    summary.get_by_role("link", name="Demo (local IAS stand-in)").click()
    expect(page).to_have_url(live_server.url + "/apps/demo/")
    assert all(url.startswith(live_server.url) for url in page.requested)  # no other host
