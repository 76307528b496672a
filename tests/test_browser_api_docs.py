"""The API's interactive documentation and the "API tokens" page in headless Chromium: Swagger UI
from the portal's own static files works under the Content-Security-Policy (no inline script, no
CDN; the page fixture fails on any blocked script or style), and tries calls with the session and
with a token made on the page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from certmgr.api.models import ApiToken

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def operation(page, method: str, path: str):
    return page.locator(f".opblock-{method}").filter(has=page.locator(f'[data-path="{path}"]'))


def try_out(page, method: str, path: str):
    block = operation(page, method, path)
    block.locator(".opblock-summary").first.click()
    block.get_by_role("button", name="Try it out").click()
    block.get_by_role("button", name="Execute").click()
    return block.locator(".live-responses-table tbody .response-col_status").first


def test_the_docs_show_every_operation_and_try_a_call_with_the_session(page, live_server, frontend_app):
    page.goto(live_server.url + "/api/v1/docs/")

    expect(page.locator(".opblock")).to_have_count(18, timeout=15_000)
    expect(page.locator(".info .title")).to_contain_text("IAS certificate portal API")
    status = try_out(page, "get", "/api/v1/applications/")
    expect(status).to_have_text("200")
    expect(operation(page, "get", "/api/v1/applications/").locator(".live-responses-table")).to_contain_text(
        '"slug": "frontend"'
    )
    assert all(url.startswith(live_server.url) for url in page.requested)  # no CDN, no validator badge


def test_a_token_made_on_the_page_is_shown_once_and_authorizes_the_docs(page, live_server, frontend_app):
    page.goto(live_server.url + "/account/api-tokens/")
    page.get_by_label("Name").fill("docs try-out")
    page.get_by_label("Applications", exact=True).fill("frontend")
    page.get_by_role("button", name="Make token").click()

    token = page.locator("#new-token").inner_text()
    assert re.fullmatch(r"cmp_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", token)
    row = ApiToken.objects.get()
    expect(page.get_by_test_id("tokens")).to_contain_text(f"{row.prefix}…")
    page.goto(live_server.url + "/account/api-tokens/")
    expect(page.locator("#new-token")).to_have_count(0)

    # Without the session: only the token lets the docs' calls through.
    page.context.clear_cookies()
    page.goto(live_server.url + "/login/")
    page.get_by_label("User name").fill("otto")
    page.get_by_label("Password").fill("otto-pass-123")
    page.get_by_role("button", name="Log in").click()
    page.goto(live_server.url + "/api/v1/docs/")
    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".auth-container input").first.fill(token)
    page.locator(".auth-container").first.get_by_role("button", name="Apply credentials").click()
    page.get_by_role("button", name="Close").first.click()
    status = try_out(page, "get", "/api/v1/certificates/")
    expect(status).to_have_text("200")
    row.refresh_from_db()
    assert row.last_used_at is not None
