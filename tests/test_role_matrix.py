"""Every route of the portal × GET and POST × every persona, generated from the URL resolver.

The routes come from ``django.urls.get_resolver()``: the feature pages, the feeds, /metrics, the
login pages (password and IAS), the admin site (every registered model's pages) and /healthz.
Each must have a line in ``RULES`` (its URL name, or for an unnamed pattern its route text;
admin patterns by glob): who may GET it, who may POST to it, and what its ``<int:pk>`` names.

**A new route is one line in RULES**, e.g.::

    "api-tokens": Rule(READ, MANAGE, pk="token"),

Without it ``test_every_route_has_a_rule`` fails and names the route. A ``pk`` kind the world does
not know yet goes into ``tests/role_world.py`` (``Side.pks``, for A and for B); a URL kwarg of a
new name into ``KWARGS`` of tests/role_rules.py; a new way of being let in (an API token, say) is
an ``Access`` or a gate there. ``body`` is POST data that changes something when accepted.

For each route, URL kwargs are filled from the world of tests/role_world.py: A's slug with A's ids,
B's with B's, and the crossings (A's slug with B's ids, B's slug with A's). The personas:
anonymous, a viewer, the owner of A, the owner of B, an admin, someone logged in with no role.
Each answer is compared with the rule: "ok" (2xx, or a redirect not to a login page), "login"
(a redirect to a login page), or the refusal's status (401, 403, 404, 405). Besides the status:

- a refused request, and a POST by anyone the rule does not let change the application, changes
  nothing (a digest of every table, sessions included, before and after);
- a POST with the rule's ``body`` by someone allowed does change something (else the body went
  stale and the check above would see nothing);
- no answer carries a private key or a channel secret of the world in any form of
  tests/secret_forms.py, except the key download to the key's managers (which must carry it).

Each request runs in a savepoint that is rolled back: every request sees the same world.
"""

from __future__ import annotations

import fnmatch
import hashlib
import secrets
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

import pytest
import time_machine
from django.db import transaction

from tests import certs, role_world
from tests.role_rules import (
    ADMIN,
    ADMIN_LOGOUT,
    ADMIN_SITE,
    ADMIN_SITE_LOGIN,
    ANYONE,
    API,
    AUDIT_TABLE,
    BEARER,
    MANAGE,
    NOT_ALLOWED,
    NOT_FOUND,
    OK,
    OPEN,
    PERSONAS,
    READ,
    REFUSED,
    SIGNED_IN,
    SITE,
    SITE_RULES,
    STRAY,
    TOKEN,
    Route,
    Rule,
    Target,
    body_of,
    digest,
    is_glob,
    manages,
    outcome,
    routes,
    rule_for,
    targets,
    url_of,
)
from tests.secret_forms import PEM_ARMOUR, Needles, leaks, text_forms

pytestmark = pytest.mark.django_db


def _app_form(w: role_world.World, t: Target) -> dict:
    side = w.sides[t.side]
    return {"name": "Renamed", "slug": side.app.slug, "owners": [side.owner.pk], "notes": "by the matrix"}


def _upload(w: role_world.World, t: Target) -> dict:
    side = w.sides[t.side]
    return {"application": side.app.pk, "text": side.upload.decode(), "lifecycle": "active"}


RULES: dict[str, Rule] = {
    "healthz": Rule(ANYONE, ANYONE, gate=OPEN),
    # access
    "login": Rule(ANYONE, ANYONE, gate=OPEN),
    "logout": Rule(NOT_ALLOWED, ANYONE, gate=SIGNED_IN),
    "logged-out": Rule(ANYONE, ANYONE, gate=OPEN),
    "oidc_authentication_init": Rule(ANYONE, NOT_ALLOWED, gate=OPEN),
    "oidc_authentication_callback": Rule(STRAY, NOT_ALLOWED, gate=OPEN),
    "audit-log": Rule(ADMIN, ADMIN),
    # feeds
    "metrics": Rule(BEARER, NOT_ALLOWED, gate=OPEN),
    "feed-all": Rule(TOKEN, NOT_ALLOWED, gate=OPEN),
    "feed-application": Rule(TOKEN, NOT_ALLOWED, gate=OPEN),
    "account-calendar": Rule(READ, READ, body={"action": "new-feed-url"}),
    # bindings
    "certificate-binding": Rule(READ, NOT_ALLOWED, pk="certificate"),
    "api-certificate-binding": Rule(READ, NOT_ALLOWED, pk="certificate"),
    # rotation
    "application-rotation": Rule(READ, NOT_ALLOWED),
    "application-promote": Rule(NOT_ALLOWED, MANAGE, pk="staged", body={"confirm": "yes"}),
    "pending-key-new": Rule(NOT_ALLOWED, MANAGE, body={"key_type": "ec-p256", "subject": "CN=matrix-made"}),
    "pending-key-csr": Rule(MANAGE, NOT_ALLOWED, pk="pending"),
    "pending-key-discard": Rule(NOT_ALLOWED, MANAGE, pk="pending", body={}),
    "application-credential-types": Rule(READ, READ),
    # the automation API and its pages: exact answers in tests/test_api_roles.py
    "api-*": Rule(API, API, gate=OPEN, audits_every_write=True),
    "api-token-revoke": Rule(API, API, gate=OPEN, pk="certificate"),  # an id that names no token
    # health checks
    "health-history": Rule(READ, READ),
    "health-check": Rule(NOT_ALLOWED, MANAGE),
    "health-run": Rule(READ, READ, pk="run"),
    # notifications
    "notifications": Rule(READ, NOT_ALLOWED),
    "notification-channel-new": Rule(MANAGE, MANAGE, body={"kind": "email", "name": "new", "enabled": "on"}),
    "notification-channel-edit": Rule(MANAGE, MANAGE, pk="channel", body={"name": "renamed"}),
    "notification-channel-delete": Rule(NOT_ALLOWED, MANAGE, pk="channel", body={}),
    "notification-channel-test": Rule(NOT_ALLOWED, MANAGE, pk="channel", body={}),
    "application-thresholds": Rule(NOT_ALLOWED, MANAGE, body={"thresholds": "5"}),
    "certificate-mute": Rule(NOT_ALLOWED, MANAGE, pk="certificate", body={"muted_until": "2026-07-01"}),
    # inventory
    "dashboard": Rule(READ, READ),
    "search": Rule(READ, NOT_ALLOWED),
    "search-applications": Rule(READ, NOT_ALLOWED),
    "certificates": Rule(READ, READ),
    "certificate": Rule(READ, READ, pk="certificate"),
    "certificate-pem": Rule(READ, READ, pk="certificate"),
    "certificate-key": Rule(NOT_ALLOWED, MANAGE, pk="certificate", body={"password": ""}, reveals_key=True),
    "certificate-lifecycle": Rule(NOT_ALLOWED, MANAGE, pk="certificate", body={"lifecycle": "retired"}),
    "upload": Rule(READ, READ, body=_upload, writes=MANAGE, ids_in_body=True),
    "application-create": Rule(ADMIN, ADMIN, body={"name": "Made by the matrix", "slug": "matrix-made"}),
    "application": Rule(READ, READ),
    "application-edit": Rule(MANAGE, MANAGE, body=_app_form),
    "application-upload": Rule(MANAGE, MANAGE, body=_upload),
    # the admin site: its staff check keeps everyone but admins out; its per-model permissions
    # decide what admins may do (read-only models answer 403 to changes)
    "admin:login": Rule(ADMIN_SITE_LOGIN, ADMIN_SITE_LOGIN, gate=OPEN),
    "admin:logout": Rule(ADMIN_LOGOUT, ANYONE, gate=SIGNED_IN),
    "admin:password_change_done": Rule(SITE, NOT_ALLOWED, gate=ADMIN_SITE),
    "admin:jsi18n": Rule(SITE, NOT_ALLOWED, gate=ADMIN_SITE),
    "admin:autocomplete": Rule(SITE_RULES, NOT_ALLOWED, gate=ADMIN_SITE),
    "admin:index": Rule(SITE, SITE_RULES, gate=ADMIN_SITE),
    "admin:app_list": Rule(SITE, SITE_RULES, gate=ADMIN_SITE),
    "admin:*_changelist": Rule(SITE, SITE_RULES, gate=ADMIN_SITE),
    "admin:*_change": Rule(SITE, SITE_RULES, gate=ADMIN_SITE),
    "admin:*_delete": Rule(SITE_RULES, SITE_RULES, gate=ADMIN_SITE, body={"post": "yes"}),
    "admin:*": Rule(SITE_RULES, SITE_RULES, gate=ADMIN_SITE),
    "admin/(?P<url>.*)$": Rule(NOT_FOUND, NOT_FOUND, gate=ADMIN_SITE),
    "admin/*": Rule(SITE, SITE, gate=ADMIN_SITE),  # <object_id>/: redirects to the change page
}


# --- the world and the requests -----------------------------------------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module, inside a transaction rolled back at its end (as TestCase's
    setUpTestData); each test's own transaction, and each request's savepoint, nest inside."""
    with time_machine.travel(certs.MID_LIFE, tick=False):
        with django_db_blocker.unblock():
            atomic = transaction.atomic()
            atomic.__enter__()
            built = role_world.build()
        yield built
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture
def portal_secrets(settings) -> dict[str, Needles]:
    """IAS login configured (its pages then do their work; its tenant is never called here), and
    a metrics token (so /metrics asks for it rather than being switched off): two more secrets."""
    client_secret, metrics_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    settings.CERTMGR_OIDC = {
        "issuer": "https://127.0.0.1:9",
        "client_id": "matrix-client",
        "client_secret": client_secret,
        "certificate_pem": None,
        "key_pem": None,
        "authorization_endpoint": "https://127.0.0.1:9/oauth2/authorize",
        "end_session_endpoint": "https://127.0.0.1:9/oauth2/logout",
    }
    settings.OIDC_RP_CLIENT_ID = "matrix-client"
    settings.CERTMGR_METRICS_TOKEN = metrics_token
    return {
        "the IAS login's client secret": text_forms(client_secret),
        "the metrics token": text_forms(metrics_token),
    }


def classified() -> list[tuple[Route, Rule]]:
    return [(route, rule) for route in routes() if (rule := rule_for(route, RULES)) is not None]


@dataclass
class Visit:
    """One persona's way through every route; what went wrong, in words."""

    client: object
    world: role_world.World
    persona: str
    portal_secrets: dict[str, Needles]
    count: int = 0
    wrong: list[str] = field(default_factory=list)
    baseline: str = ""
    baseline_without_audit: str = ""
    cookies: dict = field(default_factory=dict)
    searched: set = field(default_factory=set)

    def start(self) -> None:
        if self.persona != "anonymous":
            self.client.force_login(self.world.users[self.persona])
        self.client.raise_request_exception = False  # a crash is a 500 in the list, not a stop
        self.cookies = {name: morsel.value for name, morsel in self.client.cookies.items()}
        self.baseline = digest()
        self.baseline_without_audit = digest(without=(AUDIT_TABLE,))

    def check(self, route: Route, rule: Rule, target: Target, method: str) -> None:
        expected, who = rule.expected(method, self.persona, target)
        url = url_of(route, rule, self.world, target)
        body = rule.body(self.world, target) if callable(rule.body) else rule.body
        where = f"{method.upper()} {url} [{route.key}; {target}]"
        with transaction.atomic():
            response = self.client.post(url, body or {}) if method == "post" else self.client.get(url)
            got = outcome(response)
            must_change = self.must_change(rule, target, method, got)
            if rule.audits_every_write:
                changed = digest(without=(AUDIT_TABLE,)) != self.baseline_without_audit
            else:
                changed = digest() != self.baseline
            if must_change is not None and changed != must_change:
                self.wrong.append(f"{where}: {'did not change' if must_change else 'changed'} the database")
            transaction.set_rollback(True)
        self.client.cookies = SimpleCookie(self.cookies)  # logged out, or a message waiting: undone
        self.count += 1
        if got not in expected:
            self.wrong.append(
                f"{where}: {got} ({response.status_code}), expected {'/'.join(sorted(expected))} ({who})"
            )
        self.search(where, body_of(response), rule, target, method, got)

    def must_change(self, rule: Rule, target: Target, method: str, got: str) -> bool | None:
        """False: nothing may change; True: the rule's body must have changed something; None: either."""
        if got in REFUSED:
            return False
        if method == "get" or got != OK:
            return None
        if not rule.may_write(self.persona, target):
            return False
        return True if rule.body is not None and not target.crossed else None

    def search(self, where: str, data: bytes, rule: Rule, target: Target, method: str, got: str) -> None:
        kept = {**self.world.secrets(), **self.portal_secrets, "a PEM private key": {"armour": PEM_ARMOUR}}
        spared = frozenset()
        if rule.reveals_key and method == "post" and got == OK and manages(self.persona, target.side):
            spared = frozenset({f"{target.side}'s private key", "a PEM private key"})
            if not leaks(data, {name: kept[name] for name in spared}):
                self.wrong.append(f"{where}: the key download does not hold the key")
        seen = (hashlib.sha256(data).digest(), spared)
        if seen not in self.searched:
            self.searched.add(seen)
            found = leaks(data, kept, spared=spared)
            if found:
                self.wrong.append(f"{where}: the answer holds {', '.join(found[:3])}")


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_route_answers_each_persona_as_its_rule_says(client, world, portal_secrets, persona):
    visit = Visit(client, world, persona, portal_secrets)
    visit.start()
    for route, rule in classified():
        for target in targets(route, rule):
            for method in ("get", "post"):
                visit.check(route, rule, target, method)

    assert visit.wrong == [], f"{persona}: {len(visit.wrong)} of {visit.count} requests\n" + "\n".join(
        visit.wrong
    )
    assert visit.count > 200


def test_every_route_has_a_rule():
    missing = [f"{route.key} ({route.route})" for route in routes() if rule_for(route, RULES) is None]

    assert missing == [], "routes without a line in RULES (tests/test_role_matrix.py): " + ", ".join(missing)


def test_every_rule_names_a_route():
    keys = [route.key for route in routes()]
    stale = [
        key
        for key in RULES
        if not any(fnmatch.fnmatchcase(k, key) if is_glob(key) else k == key for k in keys)
    ]

    assert stale == [], "lines in RULES for routes that no longer exist: " + ", ".join(stale)


def test_the_matrix_reaches_every_part_of_the_portal():
    from django.contrib import admin

    keys = {route.key for route, _ in classified()}
    admin_pages = {
        f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}"
        for model in admin.site._registry
        for page in ("changelist", "change")
    }
    wanted = {"healthz", "login", "oidc_authentication_init", "metrics", "feed-all", "upload", "admin:index"}

    assert wanted | admin_pages <= keys
    assert len(keys) >= 80
