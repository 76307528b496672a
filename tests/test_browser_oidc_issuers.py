"""Login through IAS in headless Chromium against tenants that issue id_tokens as real ones may: a
schemeless iss, and a custom domain (iss there, ias_iss the tenant)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from certmgr.core.tokenflow import forget_cached_state
from tests.conftest import log_in_through
from tests.test_browser_oidc import ias_browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLIENT_ID = "portal-browser-login-issuers"
SECRET = "browser-issuers-secret-3c9d"
PASSWORD = "bruno-pass-0815"


@pytest.fixture
def ias_login(ias, ias_settings, live_server, frontend_app):
    forget_cached_state()
    ias.register_oidc_client(CLIENT_ID, SECRET, [live_server.url + "/oidc/callback/"])
    ias.add_user("bruno", PASSWORD, email="bruno@example.com", given_name="Bruno", groups=["team-frontend"])
    frontend_app.owner_groups.add(Group.objects.create(name="ias:team-frontend"))
    log_in_through(ias_settings, ias, CLIENT_ID, SECRET)
    ias_settings.STATICFILES_DIRS = [ias_settings.STATIC_ROOT]
    return ias


@pytest.mark.parametrize(
    "setting",
    [{"schemeless_issuer": True}, {"custom_domain": "https://login.example.test"}],
    ids=["schemeless iss", "custom domain"],
)
def test_a_person_logs_on_at_such_a_tenant_and_lands_on_the_page_asked_for(
    ias_browser,  # noqa: F811 - the fixture
    live_server,
    ias_login,
    frontend_app,
    browser_clock,
    setting,
):
    ias_login.configure_client(CLIENT_ID, **setting)
    context = ias_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()

    page.goto(live_server.url + frontend_app.get_absolute_url())
    assert page.url.startswith(f"{ias_login.url}/oauth2/authorize?")
    page.get_by_label("Email or user name").fill("bruno")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log on").click()

    page.wait_for_url(live_server.url + frontend_app.get_absolute_url())
    expect(page.locator("h1")).to_contain_text("Frontend")
    expect(page.locator(".who:visible")).to_have_text("bruno@example.com · owner")
    context.close()
    [exchange] = [r for r in ias_login.token_requests if r.client_id == CLIENT_ID]
    assert (exchange.status, exchange.token_format) == (200, "jwt")
