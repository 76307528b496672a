"""In real headless Chromium, under a Content-Security-Policy without inline script: Otto opens his
certificate, copies the JSON block, switches to Terraform, copies that, names his service key.

What lands on the clipboard must be exactly what bindings.rendered makes. The browser, the clock
(20 days before expiry) and Otto's logged-in page come from tests/conftest.py.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from certmgr.bindings import parameters as bindings
from certmgr.core.binding import FORMATS, Target

pytestmark = [pytest.mark.browser]

# What the portal will send later; here the browser gets it on every answer of the live server.
CSP = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'"


@pytest.fixture
def strict_page(page, live_server):
    """Otto's page, with the CSP on every answer and a record of console errors (CSP reports)."""

    def with_csp(route):
        response = route.fetch(max_redirects=0)
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": CSP})

    page.route(f"{live_server.url}/**", with_csp)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.errors = []
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


def clipboard(page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def copy_from(page, label: str):
    panel = page.get_by_role("tabpanel", name=label)
    panel.get_by_role("button", name=f"Copy {label}").click()
    expect(panel.get_by_text("Copied", exact=True)).to_be_visible()


def tab(page, name: str):
    return page.get_by_role("tab", name=name, exact=True)


def test_copy_puts_exactly_the_rendered_block_on_the_clipboard(strict_page, live_server, store, leaf):
    page = strict_page
    cert = store(leaf.pem)
    page.goto(f"{live_server.url}/certificates/{cert.pk}/")

    tabs = page.get_by_role("tablist", name="Format").get_by_role("tab")
    assert tabs.all_inner_texts() == [
        "JSON", "cf CLI", "manifest.yml", "mta.yaml", "Kyma", "Terraform (BTP)", "Terraform (Cloud Foundry)"
    ]  # fmt: skip
    expect(tab(page, "JSON")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel")).to_have_count(1)  # the others are hidden

    copy_from(page, "JSON")
    assert clipboard(page) == bindings.rendered(cert, "json")

    page.get_by_role("tab", name="Terraform (BTP)", exact=True).click()
    expect(tab(page, "Terraform (BTP)")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tab", selected=True)).to_have_count(1)
    expect(page.get_by_role("tabpanel", name="JSON")).to_be_hidden()
    copy_from(page, "Terraform (BTP)")
    assert clipboard(page) == bindings.rendered(cert, "terraform")

    assert page.errors == []  # no script refused by the CSP, no script error
    assert all(url.startswith(live_server.url) for url in page.requested)  # no CDN


def test_the_tabs_follow_the_keyboard_and_the_options_keep_the_chosen_tab(
    strict_page, live_server, store, leaf
):
    page = strict_page
    cert = store(leaf.pem)
    page.goto(f"{live_server.url}/certificates/{cert.pk}/")

    # Auto-waiting assertions: under load the page may take a moment to react to a key.
    page.get_by_role("tab", name="JSON", exact=True).focus()
    page.keyboard.press("ArrowLeft")
    expect(tab(page, "Terraform (Cloud Foundry)")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    expect(tab(page, "cf CLI")).to_have_attribute("aria-selected", "true")
    expect(tab(page, "cf CLI")).to_be_focused()
    page.keyboard.press("End")
    expect(page).to_have_url(re.compile(r"#format-terraform-cf$"))

    page.get_by_label("Cloud Foundry app").fill("shop-web")
    page.get_by_label("Include the issuer certificates (chain)").check()
    page.get_by_label("a binding of the app").check()
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(
        f"**/certificates/{cert.pk}/?chain=1&instance=&app=shop-web&key=&cf_target=app#format-terraform-cf"
    )

    expect(tab(page, "Terraform (Cloud Foundry)")).to_have_attribute("aria-selected", "true")
    copy_from(page, "Terraform (Cloud Foundry)")
    assert clipboard(page) == bindings.rendered(
        cert, "terraform-cf", chain=True, target=Target(app="shop-web", cf_target="app")
    )
    assert page.errors == []


def test_without_script_every_block_shows_one_after_the_other(
    browser, live_server, owner, browser_clock, settings, store, leaf
):
    settings.STATICFILES_DIRS = [settings.STATIC_ROOT]
    cert = store(leaf.pem)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/certificates/{cert.pk}/")
    page.get_by_label("User name").fill("otto")
    page.get_by_label("Password").fill("otto-pass-123")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("tab")).to_have_count(0)
    expect(page.get_by_role("button", name="Copy")).to_have_count(0)
    for fmt in FORMATS:
        expect(page.locator(f"#code-{fmt}")).to_be_visible()
        assert page.locator(f"#code-{fmt}").text_content() == bindings.rendered(cert, fmt)
    expect(page.get_by_role("link", name="Download binding.tf")).to_be_visible()
    # The choice of a key or the app's binding is a plain form: it works without script too.
    page.get_by_label("a binding of the app").check()
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**cf_target=app**")
    assert page.locator("#code-cf").text_content() == bindings.rendered(
        cert, "cf", target=Target(cf_target="app")
    )
    context.close()
