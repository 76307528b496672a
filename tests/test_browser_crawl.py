"""Every page reachable from the dashboard, in headless Chromium, on a phone and on a laptop.

Ada (admin) and Vera (viewer) log in and follow every link from the dashboard, with 300
applications in the portal: each kind of page (one per view and set of query parameters) is
opened at 390 px and at 1366 px wide, once in the light and once in the dark colour scheme.
On every page: nothing wider than the window, no console error (a Content-Security-Policy
refusal is one), no failed request, no serious or critical axe-core violation, and no select
list with an option per application. One browser for the module; each persona logs in once and
its session is shared by both window sizes.
"""

from __future__ import annotations

from collections import deque
from datetime import timedelta
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import Resolver404, resolve

from certmgr.healthcheck import runner as healthchecks
from certmgr.models import Application, HealthCheckRun
from certmgr.notifications.models import Notice, NotificationChannel
from tests import certs

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("mid_life")]

FLEET = 300
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "laptop": {"width": 1366, "height": 900}}
# Not pages: downloads, calendar feeds, leaving the session.
NOT_PAGES = ("export=csv", ".ics", ".pem", "/binding/", "/logout/", "/admin/logout/", "/key", "openapi.json")
# Swagger UI (the API's interactive document) is the vendor's markup, served from its sidecar
# package as it ships: axe faults its operation headers (nested-interactive) and some of its
# greys. Its width, console and requests are checked like every page's; not its markup.
VENDOR_MARKUP = ("/api/v1/docs/",)
MAX_PAGES = 120  # per persona and window: a bound, far above what the portal has
AXE = Axe()
# The innermost elements that reach past the window's right edge: what to fix when a page is too wide.
WIDEST = """Array.from(document.querySelectorAll('body *'))
  .filter(e => e.checkVisibility() && e.getBoundingClientRect().right > window.innerWidth + 1)
  .filter(e => !Array.from(e.children).some(c => c.getBoundingClientRect().right > window.innerWidth + 1))
  .slice(0, 3).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''))
  .join(', ')"""


@pytest.fixture
def fleet(checked_app, store, owner, admin_user, viewer, ias):
    """'frontend' with a real health check behind it, 299 more applications, channels and notices."""
    healthchecks.run_check(checked_app, trigger="manual", actor_label="otto")
    Application.objects.bulk_create(
        Application(name=f"Fleet app {i:03d}", slug=f"fleet-{i:03d}", client_id=f"client-{i:03d}")
        for i in range(1, FLEET)
    )
    for i in range(1, 6):  # a few with certificates of their own, in other states
        app = Application.objects.get(slug=f"fleet-{i:03d}")
        store(
            certs.issue(
                f"fleet-{i:03d}", serial=0x7000 + i, not_after=certs.MID_LIFE + timedelta(days=9 * i)
            ).pem,
            app,
        )
    failing = Application.objects.get(slug="fleet-002")
    run = HealthCheckRun.objects.create(application=failing, trigger="scheduled", ok=False, failed_step="token",
                                        code="invalid_client", diagnosis="IAS refused the client.", steps=[])  # fmt: skip
    Application.objects.filter(pk=failing.pk).update(last_check=run, checks_paused=True)
    channel = NotificationChannel.objects.create(application=checked_app, kind="email", name="team mail",
                                                 options={"include_owners": True, "addresses": []})  # fmt: skip
    Notice.objects.create(application=checked_app, channel=channel, event="test", state="failed",
                          recipient="otto@example.com", last_error="550 mailbox unavailable")  # fmt: skip
    return checked_app


@pytest.fixture
def sessions(browser, live_server, settings, admin_user, viewer):
    """A logged-in browser session (cookies) per persona, made once by the login form."""
    settings.STATICFILES_DIRS = [settings.STATIC_ROOT]  # the live server finds the hashed copies
    states = {}
    for persona, (name, password) in {
        "ada": ("ada", "ada-pass-123"),
        "vera": ("vera", "vera-pass-123"),
    }.items():
        context = browser.new_context()
        page = context.new_page()
        page.goto(live_server.url + "/login/")
        page.get_by_label("User name").fill(name)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(live_server.url + "/")
        states[persona] = context.storage_state()
        context.close()
    return states


# Of the Django admin, its index and lists: its forms are Django's own widgets, whose script sets
# inline styles (refused by the portal's policy) and whose markup axe faults; not the portal's pages.
ADMIN_PAGES = ("admin:index", "admin:app_list")
VARIANTS = {"sort", "page", "range"}


def kind_of(url: str) -> tuple:
    """One visit per kind of page: the view, and which query parameters it got (not their values)."""
    parts = urlsplit(url)
    try:
        name = resolve(parts.path).view_name
    except Resolver404:
        return ("unknown", parts.path)
    if name.startswith("admin:"):
        return (name,)
    names = {key for key, _ in parse_qsl(parts.query)}
    # A sorted or later page of a list is one more kind; not again with every filter.
    return (name, tuple(sorted(names - VARIANTS)), bool(names & VARIANTS) and not names - VARIANTS)


def links_on(page, base: str) -> list[str]:
    hrefs = page.eval_on_selector_all(
        "a[href]:not([download])", "links => links.map(a => a.getAttribute('href'))"
    )
    found = []
    for href in hrefs:
        url = urljoin(page.url, href).split("#")[0]
        if url.startswith(base + "/") and not any(part in url for part in NOT_PAGES):
            name = kind_of(url)[0]
            if not name.startswith("admin:") or name in ADMIN_PAGES or name.endswith("_changelist"):
                found.append(url)
    return found


def problems_on(page, url: str, heard: list[str]) -> list[str]:
    heard.clear()
    response = page.goto(url)
    page.wait_for_load_state("load")
    if url.endswith(VENDOR_MARKUP):
        # Swagger UI fetches the schema after "load": leaving earlier would abort that request and
        # report it on the next page.
        page.wait_for_load_state("networkidle")
    found = [f"{url}: HTTP {response.status}"] if response.status != 200 else []
    scroll, window = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    if scroll > window:
        found.append(f"{url}: {scroll} px wide in a {window} px window, at {page.evaluate(WIDEST)}")
    for select, options in page.evaluate(
        "Array.from(document.querySelectorAll('select')).map(s => [s.name || s.id, s.options.length])"
    ):
        if options >= FLEET:
            found.append(f"{url}: select {select} lists {options} options")
    violations = [] if url.endswith(VENDOR_MARKUP) else AXE.run(page).response["violations"]
    for violation in violations:
        if violation["impact"] in ("serious", "critical"):
            where = ", ".join(str(node["target"]) for node in violation["nodes"][:3])
            found.append(f"{url}: axe {violation['id']} ({violation['impact']}) at {where}")
    return found + [f"{url}: {message}" for message in heard]


def crawl(context, base: str) -> tuple[set, list[str]]:
    page = context.new_page()
    heard: list[str] = []
    page.on("console", lambda m: m.type == "error" and heard.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: heard.append(f"script error: {e}"))
    page.on("requestfailed", lambda r: heard.append(f"request failed: {r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and heard.append(f"HTTP {r.status} for {r.url}"))
    queue, seen, problems = deque([base + "/", base + "/search/?q=fleet-00"]), set(), []
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if kind_of(url) in seen:
            continue
        seen.add(kind_of(url))
        problems += problems_on(page, url, heard)
        queue.extend(links_on(page, base))
    page.close()
    return seen, problems


def open_menu_reaches_every_link(context, base: str) -> list[str]:
    """On a phone the navigation is behind "Menu", which opens without script."""
    page = context.new_page()
    page.goto(base + "/")
    nav = page.get_by_role("navigation", name="Main")
    hidden = not nav.is_visible()
    page.get_by_text("Menu", exact=True).click()
    links = nav.get_by_role("link")
    visible = all(link.is_visible() for link in links.all()) and links.count() >= 3
    wide = page.evaluate("document.scrollingElement.scrollWidth > window.innerWidth")
    page.close()
    return [] if hidden and visible and not wide else ["the phone's menu does not hide and show the links"]


@pytest.mark.parametrize("persona", ["ada", "vera"])
def test_every_page_fits_the_window_has_no_errors_and_passes_axe(
    browser, live_server, fleet, sessions, persona
):
    problems, kinds = [], {}
    schemes = (
        {"phone": "dark", "laptop": "light"} if persona == "ada" else {"phone": "light", "laptop": "dark"}
    )
    for size, viewport in VIEWPORTS.items():
        context = browser.new_context(
            viewport=viewport, storage_state=sessions[persona], color_scheme=schemes[size]
        )
        seen, found = crawl(context, live_server.url)
        kinds[size] = seen
        problems += [f"[{size}, {schemes[size]}] {problem}" for problem in found]
        if size == "phone":
            problems += open_menu_reaches_every_link(context, live_server.url)
        context.close()

    assert problems == [], "\n".join(problems)
    assert len(kinds["phone"]) < MAX_PAGES  # the crawl ended because it had seen every kind of page
    views = {kind[0] for kind in kinds["laptop"]}
    expected = {"dashboard", "certificates", "certificate", "application", "health-history", "health-run",
                "notifications", "account-calendar", "search", "application-credential-types"}  # fmt: skip
    if persona == "ada":
        expected |= {"audit-log", "upload", "application-upload", "application-edit", "admin:index"}
    assert expected <= views, expected - views
