"""The "Run health check" button in headless Chromium: steps appear as the server completes them."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def step(page, name: str):
    return page.locator(f'#health-steps li[data-step="{name}"]')


def test_the_steps_turn_green_one_after_the_other(page, live_server, checked_app, ias):
    ias.faults.delay = {"/oauth2/token": 1.0}  # slow enough to watch the token step run
    page.goto(live_server.url + checked_app.get_absolute_url())

    page.get_by_role("button", name="Run health check").click()

    expect(step(page, "discovery")).to_have_class("step-ok")
    expect(step(page, "token")).to_have_class("running")  # discovery is shown before the token comes
    expect(page.get_by_test_id("health-summary")).to_have_text("")
    expect(page.get_by_test_id("health-summary")).to_contain_text(
        "Healthy: IAS issued a token for this certificate and the backend accepted it.", timeout=10_000
    )
    for name in ("discovery", "token", "token_validation", "backend"):
        expect(step(page, name)).to_have_class("step-ok")
        expect(step(page, name).locator(".step-state")).to_have_text(re.compile(r"ok · \d+ ms"))

    page.get_by_role("link", name="Details").click()
    expect(page.locator("h1")).to_contain_text("healthy")
    page.goto(live_server.url + "/")
    expect(page.get_by_role("row", name="Frontend")).to_contain_text("healthy")
    assert all(url.startswith(live_server.url) for url in page.requested)  # no CDN, no other host


def test_a_refusal_names_the_step_and_the_steps_it_stopped(page, live_server, checked_app, ias):
    ias.unregister(checked_app.client_id)
    page.goto(live_server.url + checked_app.get_absolute_url())

    page.get_by_role("button", name="Run health check").click()

    expect(page.get_by_test_id("health-summary")).to_contain_text("Failed at token: IAS refused the client")
    expect(step(page, "token")).to_have_class("step-failed")
    expect(step(page, "token")).to_contain_text("not registered for client id")
    expect(step(page, "token_validation").locator(".step-state")).to_have_text("not run")
    expect(step(page, "backend").locator(".step-state")).to_have_text("not run")
    expect(page.get_by_role("button", name="Run health check")).to_be_enabled()
