"""No form and no query string answers hostile input with a 500: every page the portal serves is
fetched, every form on it is found in its HTML and posted with hostile values field by field, and
every filter (GET form) and ``page`` is tried the same way. A new form is covered without editing
this test. An admin does it (she may reach everything); the answers may be 200, 302, 400, 403, 404
or 405, never a server error.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from certmgr.models import HealthCheckRun, NotificationChannel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_life")]

HOSTILE = [
    "x" * 100_000,  # far beyond any field's length
    "\x00",  # PostgreSQL refuses NUL in text
    "9" * 100,  # an id or a number beyond every integer column
    "-1",
    "9999-12-31",  # a day after which no day exists
    "0000-00-00",
    "1e309",
    "ä" * 2000,  # 4,000 bytes of UTF-8
]
SKIPPED = {"logout", "oidc_authentication_init", "oidc_authentication_callback", "healthz"}
# Pages reached by their own means, not by a logged-in admin's forms (tested in their own files).
BY_THEIR_OWN_MEANS = {"metrics", "feed-all", "feed-application"}


class Forms(HTMLParser):
    """The forms of a page: (method, action, [field names])."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, str, list[str]]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.found.append(((attrs.get("method") or "get").lower(), attrs.get("action") or "", []))
        elif tag in {"input", "select", "textarea"} and self.found and attrs.get("name"):
            if attrs.get("type") not in {"file", "submit", "hidden"} or attrs["name"] not in {
                "csrfmiddlewaretoken"
            }:
                self.found[-1][2].append(attrs["name"])


def forms_of(html: str) -> list[tuple[str, str, list[str]]]:
    parser = Forms()
    parser.feed(html)
    return parser.found


def patterns(resolver=None, prefix=""):
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            if str(entry.pattern).startswith("admin/"):
                continue  # Django's own admin: tested by Django
            yield from patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.name:
            yield entry.name, prefix + str(entry.pattern)


@pytest.fixture
def estate(checked_app, store):
    """One of everything a URL can name: the application, its certificate (with a key), a channel,
    a health-check run."""
    certificate = checked_app.certificates.get()
    channel = NotificationChannel.objects.create(
        application=checked_app, kind="email", name="mail", options={"addresses": ["a@example.com"]}
    )
    run = HealthCheckRun.objects.create(application=checked_app, trigger="manual", ok=True, steps=[])
    return {"slug": checked_app.slug, "certificate": certificate.pk, "channel": channel.pk, "run": run.pk}


def url_of(name: str, route: str, estate: dict) -> str | None:
    kwargs = {}
    for part in route.split("<")[1:]:
        converter_name = part.split(">")[0]
        key = converter_name.split(":")[-1]
        if key == "slug":
            kwargs[key] = estate["slug"]
        elif key == "pk":
            kwargs[key] = (
                estate["channel"]
                if "channel" in name
                else estate["run"]
                if name == "health-run"
                else estate["certificate"]
            )
        elif key == "fmt":
            kwargs[key] = "json"
        else:
            return None  # a token or another part no admin form leads to
    return reverse(name, kwargs=kwargs)


@pytest.fixture
def admin_client(admin_user):
    client = Client(raise_request_exception=False)  # a 500 is an answer to look at, not a crash here
    client.force_login(admin_user)
    return client


def pages(estate) -> list[str]:
    found = []
    for name, route in patterns():
        if name in SKIPPED or name in BY_THEIR_OWN_MEANS:
            continue
        url = url_of(name, route, estate)
        if url is not None:
            found.append(url)
    return found


def test_every_form_and_filter_answers_hostile_input_without_a_server_error(admin_client, estate):
    failures, tried = [], 0
    for url in pages(estate):
        page = admin_client.get(url)
        if page.status_code >= 500:
            failures.append(("GET", url, "", page.status_code))
        if page.get("Content-Type", "").startswith("text/html") and page.status_code == 200:
            forms = forms_of(page.content.decode())
        else:
            forms = []
        for method, action, fields in forms:
            target = action or url
            for field in dict.fromkeys([*fields, "page"] if method == "get" else fields):
                for value in HOSTILE:
                    tried += 1
                    send = admin_client.get if method == "get" else admin_client.post
                    answer = send(target, {field: value})
                    if answer.status_code >= 500:
                        failures.append((method.upper(), target, field, repr(value[:20])))
    assert tried > 300, tried  # the pages' forms were found
    assert failures == [], "\n".join(map(str, failures))
