"""Login through IAS in headless Chromium: the portal (live server) sends the browser to the IAS
stand-in's login page, the person logs on there, and lands back on the page they asked for."""

from __future__ import annotations

import base64
import hashlib
import ssl
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from certmgr.core.tokenflow import forget_cached_state
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, log_in_through

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLIENT_ID = "portal-browser-login"
SECRET = "browser-login-secret-0b7e"
PASSWORD = "brigitte-pass-4711"


def spki_pin(url: str) -> str:
    """Chromium's pin of the stand-in's server key: trust that one key, not every certificate."""
    parts = urlsplit(url)
    pem = ssl.get_server_certificate((parts.hostname, parts.port))
    spki = (
        x509.load_pem_x509_certificate(pem.encode())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture
def ias_browser(standin):
    """Chromium that accepts the stand-in's TLS server key (its CA is not in the system store)."""
    import os

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={spki_pin(standin.url)}"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def ias_login(ias, ias_settings, live_server, frontend_app):
    forget_cached_state()
    ias.register_oidc_client(CLIENT_ID, SECRET, [live_server.url + "/oidc/callback/"])
    ias.add_user(
        "brigitte", PASSWORD, email="brigitte@example.com", given_name="Brigitte", groups=["team-frontend"]
    )
    frontend_app.owner_groups.add(Group.objects.create(name="ias:team-frontend"))
    log_in_through(ias_settings, ias, CLIENT_ID, SECRET)
    ias_settings.STATICFILES_DIRS = [ias_settings.STATIC_ROOT]
    return ias


def test_a_person_logs_on_at_ias_and_lands_on_the_page_asked_for(
    ias_browser, live_server, ias_login, frontend_app, backend_app, browser_clock
):
    context = ias_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requested, blocked = [], []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda m: "Content Security Policy" in m.text and blocked.append(m.text))

    page.goto(live_server.url + frontend_app.get_absolute_url())

    assert page.url.startswith(f"{ias_login.url}/oauth2/authorize?")
    page.get_by_label("Email or user name").fill("brigitte")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log on").click()

    page.wait_for_url(live_server.url + frontend_app.get_absolute_url())
    expect(page.locator("h1")).to_contain_text("Frontend")
    expect(page.locator(".who:visible")).to_have_text("brigitte@example.com · owner")
    expect(page.get_by_role("link", name="Edit")).to_be_visible()  # she owns it through her IAS group

    page.goto(live_server.url + backend_app.get_absolute_url())
    expect(page.locator("h1")).to_contain_text(backend_app.name)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)  # not hers: she only looks

    page.get_by_role("button", name="Log out").click()
    expect(page.locator("h1")).to_have_text("You are logged out of the portal")

    context.close()
    assert blocked == [], "the Content-Security-Policy blocked something"
    hosts = {urlsplit(url).netloc for url in requested}
    assert hosts <= {urlsplit(live_server.url).netloc, urlsplit(ias_login.url).netloc}, hosts


def test_a_wrong_password_stays_at_ias_and_the_portal_stays_locked(
    ias_browser, live_server, ias_login, browser_clock
):
    context = ias_browser.new_context()
    page = context.new_page()
    page.goto(live_server.url + "/")
    page.get_by_label("Email or user name").fill("brigitte")
    page.get_by_label("Password").fill("not-her-password")
    page.get_by_role("button", name="Log on").click()

    expect(page.get_by_role("alert")).to_be_visible()
    assert page.url.startswith(ias_login.url)
    page.goto(live_server.url + "/")
    assert page.url.startswith(f"{ias_login.url}/oauth2/authorize?")  # still not logged in
    context.close()
