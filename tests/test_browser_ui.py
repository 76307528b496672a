"""In headless Chromium, what the portal's small script adds: the application picker suggests as
you type, Copy puts a one-time feed URL on the clipboard, a new application's slug follows its name.
Otto's logged-in page (20 days before expiry) comes from tests/conftest.py."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from certmgr.models import Application

pytestmark = [pytest.mark.browser]


def test_the_application_filter_suggests_as_you_type_and_the_choice_filters(
    page, live_server, frontend_app, store, leaf
):
    store(leaf.pem)
    Application.objects.bulk_create(
        Application(name=f"Payroll {i:02d}", slug=f"payroll-{i:02d}") for i in range(25)
    )
    page.goto(f"{live_server.url}/certificates/")

    box = page.get_by_role("combobox", name="Application")
    box.fill("payroll-1")
    options = page.get_by_role("listbox", name="Matching applications").get_by_role("option")
    expect(options).to_have_count(10)  # at most ten: payroll-10 … payroll-19
    box.fill("front")
    expect(options).to_have_count(1)
    box.press("ArrowDown")
    box.press("Enter")
    expect(box).to_have_value("frontend")
    page.get_by_role("button", name="Apply").click()

    assert "application=frontend" in page.url
    expect(page.get_by_role("table")).to_contain_text("frontend-app (P000042)")
    expect(page.get_by_role("table")).to_contain_text("1 certificate of Frontend")


def test_copy_puts_the_new_feed_url_on_the_clipboard(page, live_server, frontend_app):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"{live_server.url}/account/calendar/")
    page.get_by_role("button", name="Create a feed URL").click()

    page.get_by_role("button", name="Copy the feed URL of every application").click()

    expect(page.get_by_text("Copied", exact=True)).to_be_visible()
    shown = page.locator("#feed-url-all").inner_text()
    assert page.evaluate("navigator.clipboard.readText()") == shown
    assert shown.startswith("http") and shown.endswith("/all.ics")


def test_the_slug_follows_the_name_until_it_is_edited(page, live_server, owner, frontend_app):
    owner.user_permissions.add(Permission.objects.get(codename="add_application"))
    page.goto(f"{live_server.url}/apps/new/")

    page.locator("#id_name").fill("Payroll Ünïcode API")
    expect(page.get_by_label("Slug")).to_have_value("payroll-unicode-api")
    page.get_by_label("Slug").fill("payroll")
    page.locator("#id_name").fill("Payroll API (EU)")
    expect(page.get_by_label("Slug")).to_have_value("payroll")
