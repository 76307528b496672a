"""Nothing of the portal is visible to someone who has not logged in, admin included.

The test walks every URL pattern the project has, so a view added later without protection
fails here without anyone having to remember to list it.
"""

from __future__ import annotations

import re
import types
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver, path, resolve, reverse

from certmgr.models import Application, AuditEvent, Certificate
from tests import certs

# The only pages an anonymous visitor may see: the two login forms.
LOGIN_PAGES = {"login", "admin:login"}
# Feeds for machines, which authenticate by their own means (tested in test_feeds.py): a bearer
# token from the configuration, a secret URL per user. Without it they answer 401 or 404.
OWN_AUTHENTICATION = {"metrics", "feed-all", "feed-application"}
# The platform's health probe (Cloud Foundry calls it without a session): it says "ok" or 503
# and nothing else (tested in test_deploy.py).
PROBES = {"healthz"}
# The way in through IAS and the way out: the start sends the visitor to IAS, the callback takes
# them back (both 404 while IAS login is not configured; tested end to end in test_oidc_login.py),
# and the logged-out page says only that.
IAS_LOGIN = {"oidc_authentication_init", "oidc_authentication_callback", "logged-out"}
# The automation API authenticates each call itself (an API token, or the session): without
# either it answers 401 as problem details, never a redirect to a login page (tests/test_api_*.py).
API = {
    "api-schema",
    "api-applications",
    "api-application",
    "api-health-checks",
    "api-health-check",
    "api-channels",
    "api-channel",
    "api-channel-test",
    "api-notices",
    "api-certificates",
    "api-certificate",
    "api-parameters",
    "api-promote",
    "api-not-found",
}
CATCH_ALL_VALUE = "no-such-page/"


def walk(patterns, prefix: str = "", namespace: str = ""):
    """(route as written, full name, callback) for every pattern, resolvers included recursively."""
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry.url_patterns, route, inner)
        elif isinstance(entry, URLPattern):
            yield route, f"{namespace}{entry.name}" if entry.name else "", entry.callback


def fill(route: str, values: dict[str, str]) -> str:
    """A concrete URL for a route: path converters and named regex groups get plausible values."""
    while (start := route.find("(?P<")) != -1:
        name = route[start + 4 : route.index(">", start)]
        depth, end = 0, start
        for end in range(start, len(route)):
            depth += {"(": 1, ")": -1}.get(route[end], 0)
            if depth == 0:
                break
        route = route[:start] + value_for(name, values) + route[end + 1 :]
    route = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value_for(m.group(1), values), route)
    return "/" + route.replace("^", "").replace("$", "").replace("\\", "")


def value_for(name: str, values: dict[str, str]) -> str:
    assert name in values, f"a URL has the parameter {name!r}: add a plausible value to the fixture"
    return values[name]


def all_urls(values: dict[str, str], urlconf=None) -> list[tuple[str, str]]:
    """(url, name) for every view; each URL is checked to reach the very view it was made for."""
    found = []
    for route, name, callback in walk(get_resolver(urlconf).url_patterns):
        url = fill(route, values)
        assert resolve(url, urlconf).func is callback, f"{url} (from {route!r}) reaches another view"
        found.append((url, name))
    return found


def violations(client, urls: list[tuple[str, str]]) -> list[str]:
    """Every anonymous GET/POST answer that is not a redirect to a login page."""
    site_login, admin_login = reverse("login"), reverse("admin:login")
    problems = []
    for url, name in urls:
        if name in LOGIN_PAGES | OWN_AUTHENTICATION | PROBES | IAS_LOGIN | API:
            continue
        allowed = {site_login, admin_login} if url.startswith("/admin/") else {site_login}
        for method in (client.get, client.post):
            response = method(url)
            target = urlsplit(response.get("Location", ""))
            if response.status_code != 302 or target.path not in allowed:
                problems.append(
                    f"{method.__name__.upper()} {url} ({name or 'unnamed'}): {response.status_code} "
                    f"{response.get('Location', '')}"
                )
    return problems


@pytest.fixture
def values(frontend_app, store):
    """Plausible values for every path parameter: the ids of things that exist."""
    cert = store(certs.issue().pem)
    return {
        "pk": str(cert.pk),
        "slug": frontend_app.slug,
        "object_id": str(cert.pk),
        "id": str(cert.pk),
        "content_type_id": "1",
        "app_label": "certmgr",
        "url": CATCH_ALL_VALUE,
        "fmt": "json",
        "token": "not-a-feed-token",
        "rest": "no-such-resource/",
    }


def test_the_walk_finds_every_portal_page_and_the_admin(values):
    names = {name for _, name in all_urls(values)}

    assert {
        "dashboard",
        "certificates",
        "certificate",
        "certificate-pem",
        "certificate-key",
        "certificate-lifecycle",
        "upload",
        "application-create",
        "application",
        "application-edit",
        "application-upload",
        "login",
        "logout",
        "admin:index",
        "admin:login",
        "admin:logout",
        "admin:certmgr_certificate_change",
        "admin:auth_user_password_change",
        "admin:app_list",
    } <= names
    assert any(url == "/admin/" + CATCH_ALL_VALUE for url, _ in all_urls(values))


def test_it_sends_an_anonymous_visitor_of_every_url_to_a_login_page(client, values):
    urls = all_urls(values)
    before = (Application.objects.count(), Certificate.objects.count(), AuditEvent.objects.count())

    assert violations(client, urls) == []
    assert (Application.objects.count(), Certificate.objects.count(), AuditEvent.objects.count()) == before
    assert Certificate.objects.get().lifecycle == Certificate.Lifecycle.ACTIVE


def test_only_the_login_pages_and_the_listed_feeds_do_without_a_login(values):
    exempt = {
        name
        for route, name, callback in walk(get_resolver().url_patterns)
        if getattr(callback, "login_required", True) is False
    }

    assert exempt == LOGIN_PAGES | OWN_AUTHENTICATION | PROBES | IAS_LOGIN | API


def test_the_api_answers_an_anonymous_caller_401_as_problem_details(client, values):
    api = [(url, name) for url, name in all_urls(values) if name in API]
    assert len(api) == len(API)

    wrong = []
    for url, name in api:
        for method in (client.get, client.post, client.patch, client.delete):
            response = method(url)
            expected = 404 if name == "api-not-found" else 401
            if response.status_code != expected or response["Content-Type"] != "application/problem+json":
                wrong.append(
                    f"{method.__name__.upper()} {url}: {response.status_code} {response['Content-Type']}"
                )
            elif expected == 401:
                assert response["WWW-Authenticate"] == 'Bearer realm="ias-cert-portal"'
    assert wrong == []


def test_without_ias_configured_its_login_pages_do_not_exist_and_logged_out_shows_nothing(client, settings):
    settings.CERTMGR_OIDC = None

    assert client.get(reverse("oidc_authentication_init")).status_code == 404
    assert client.get(reverse("oidc_authentication_callback"), {"code": "x", "state": "y"}).status_code == 404
    page = client.get(reverse("logged-out"))
    assert page.status_code == 200
    assert "You are logged out" in page.content.decode()
    assert reverse("login") in page.content.decode()


def test_the_feeds_give_an_anonymous_visitor_without_credentials_nothing(client, values, settings):
    settings.CERTMGR_METRICS_TOKEN = "configured-metrics-token"
    feeds = [(url, name) for url, name in all_urls(values) if name in OWN_AUTHENTICATION]

    answers = {name: (client.get(url).status_code, client.post(url).status_code) for url, name in feeds}

    assert answers == {"metrics": (401, 405), "feed-all": (404, 405), "feed-application": (404, 405)}


def test_the_redirect_brings_the_visitor_back_where_they_wanted_to_go(client, values):
    url = reverse("certificate", args=[values["pk"]])

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_the_login_pages_are_the_only_pages_shown_to_anonymous_visitors(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert 'name="password"' in response.content.decode()


def test_the_admin_sites_login_is_the_portals_own_with_its_rules(client):
    response = client.get(reverse("admin:login") + "?next=/admin/")

    assert response.status_code == 302
    assert response["Location"] == reverse("login") + "?next=/admin/"
    assert client.post(reverse("admin:login"), {"username": "a", "password": "b"}).status_code == 302


@pytest.mark.parametrize(
    "protection",
    [login_not_required, lambda view: view],
    ids=["marked-login-not-required", "plain-view-in-a-new-urlconf"],
)
def test_an_unprotected_view_added_later_would_be_caught(client, values, protection):
    def open_view(request, token):
        return HttpResponse("secret")

    urlconf = types.ModuleType("urls_with_an_open_view")
    urlconf.urlpatterns = [
        *get_resolver().url_patterns,
        path("open/<str:token>/", protection(open_view), name="open"),
    ]
    values = {**values, "token": "abc"}

    with override_settings(ROOT_URLCONF=urlconf):
        problems = violations(client, all_urls(values, urlconf))

    if protection is login_not_required:
        assert problems == ["GET /open/abc/ (open): 200 ", "POST /open/abc/ (open): 200 "]
    else:
        assert problems == []  # the middleware protects even views nobody thought about
