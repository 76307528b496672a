"""The role matrix's vocabulary (tests/test_role_matrix.py): personas, whose slug and ids a request
uses, who may (access levels behind gates), a route's rule; the routes of the URL resolver with
their kwargs filled from tests/role_world.py; and what an answer was.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.urls import URLResolver, get_resolver, reverse

from certmgr.models import Application
from tests.role_world import World

PERSONAS = ("anonymous", "viewer", "owner_a", "owner_b", "admin", "no_role")
OK, LOGIN = "ok", "login"  # 2xx or a redirect elsewhere; a redirect to a login page
REFUSED = {LOGIN, "401", "403", "404", "405"}


@dataclass(frozen=True)
class Target:
    """Whose slug and whose ids fill a route's kwargs (and its POST body)."""

    slug: str | None = None  # "A" or "B"
    obj: str | None = None
    token: str = ""  # a feed's: "valid" or "unknown"

    @property
    def side(self) -> str | None:
        return self.obj or self.slug

    @property
    def crossed(self) -> bool:
        return self.slug is not None and self.obj is not None and self.slug != self.obj

    def __str__(self) -> str:
        parts = [f"{self.slug}'s slug" if self.slug else "", f"{self.obj}'s ids" if self.obj else ""]
        return ", ".join(p for p in [*parts, f"{self.token} token" if self.token else ""] if p) or "-"


@dataclass(frozen=True)
class Access:
    """Who gets through, and what the others get, once past the gate."""

    name: str
    outcome: Callable[[str, Target], set[str]]


def manages(persona: str, side: str | None) -> bool:
    return persona == "admin" or (side is not None and persona == f"owner_{side.lower()}")


def _manage(persona: str, target: Target) -> set[str]:
    if target.crossed:  # A's slug with B's object: a refusal for everyone, whichever comes first
        return {"403", "404"}
    return {OK} if manages(persona, target.side) else {"403"}


ANYONE = Access("anyone", lambda p, t: {OK})
READ = Access("any role", lambda p, t: {OK})
MANAGE = Access("the application's owners and admins", _manage)
ADMIN = Access("admins", lambda p, t: {OK} if p == "admin" else {"403"})
SITE = Access("the admin site's staff", lambda p, t: {OK})
SITE_RULES = Access("the admin site's per-model permissions", lambda p, t: {OK, "403"})
NOT_ALLOWED = Access("nobody: method not allowed", lambda p, t: {"405"})
NOT_FOUND = Access("nobody: not found", lambda p, t: {"404"})
TOKEN = Access("the feed's token", lambda p, t: {OK} if t.token == "valid" else {"404"})
BEARER = Access("the metrics bearer token (none sent)", lambda p, t: {"401"})
TO_LOGIN = Access("everyone: sent to the portal's login page", lambda p, t: {LOGIN})
# The admin site's login: the portal's login page for those logged out; a 403 page for those
# logged in without the admin site (not a redirect loop between the two logins).
ADMIN_SITE_LOGIN = Access(
    "logged out: the portal's login page; logged in without the admin site: 403",
    lambda p, t: {LOGIN} if p == "anonymous" else {OK, LOGIN} if p == "admin" else {"403"},
)
STRAY = Access("nobody: a login callback without its state", lambda p, t: {"403"})
# The automation API and its pages have their own matrix, by session and by token, with exact
# answers (tests/test_api_roles.py); here: no server error, no key material, nothing changed by
# a refused call.
API = Access(
    "the API's own matrix (tests/test_api_roles.py)",
    lambda p, t: {OK, LOGIN, "400", "401", "403", "404", "405", "409", "413", "415"},
)
ADMIN_LOGOUT = Access(
    "admins, by POST; others go to the admin index", lambda p, t: {"405"} if p == "admin" else {OK}
)

# The gates before any view: login and a role (middleware), login alone (logout), the admin
# site's staff check, or none (the view authenticates by its own means).
LOGGED_IN, SIGNED_IN, ADMIN_SITE, OPEN = "logged in with a role", "logged in", "admin site", "open"


def gated(gate: str, persona: str) -> set[str] | None:
    """What the gate answers ``persona``, or None when it lets them through to the view."""
    if gate in (LOGGED_IN, SIGNED_IN) and persona == "anonymous":
        return {LOGIN}
    if gate == LOGGED_IN and persona == "no_role":
        return {"403"}
    if gate == ADMIN_SITE and persona != "admin":
        return {LOGIN}
    return None


@dataclass(frozen=True)
class Rule:
    get: Access
    post: Access
    gate: str = LOGGED_IN
    pk: str = ""  # what <int:pk> names: a key of role_world.Side.pks
    body: Callable[[World, Target], dict] | dict | None = None  # POST data that changes something
    writes: Access | None = None  # who may change the database by POST; default: who may POST
    ids_in_body: bool = False  # no ids in the URL but in the body: try A's and B's
    reveals_key: bool = False  # an accepted POST answers with the certificate's private key
    audits_every_write: bool = False  # each POST writes an audit row, refused or not (the API)

    def expected(self, method: str, persona: str, target: Target) -> tuple[set[str], str]:
        access = self.get if method == "get" else self.post
        at_gate = gated(self.gate, persona)
        return (at_gate, self.gate) if at_gate else (access.outcome(persona, target), access.name)

    def may_write(self, persona: str, target: Target) -> bool:
        return OK in (gated(self.gate, persona) or (self.writes or self.post).outcome(persona, target))


# --- the routes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    key: str  # the URL name, namespaced ("admin:index"); the route text for an unnamed pattern
    name: str | None
    route: str
    kwargs: tuple[str, ...]


def routes(resolver=None, prefix: str = "", namespace: str = "") -> list[Route]:
    """Every pattern the resolver knows, with its full route text."""
    found = []
    for pattern in (resolver or get_resolver()).url_patterns:
        text = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
            found += routes(pattern, text, inner)
            continue
        converters = getattr(pattern.pattern, "converters", {})
        kwargs = tuple(converters) or tuple(pattern.pattern.regex.groupindex)
        name = namespace + pattern.name if pattern.name else None
        found.append(Route(name or text, name, text, kwargs))
    return found


def is_glob(key: str) -> bool:
    return "*" in key and "(" not in key  # "(": a regex route's own text, e.g. the admin's catch-all


def rule_for(route: Route, rules: dict[str, Rule]) -> Rule | None:
    """The route's own line, else the first glob that matches it."""
    if route.key in rules:
        return rules[route.key]
    return next(
        (rule for key, rule in rules.items() if is_glob(key) and fnmatch.fnmatchcase(route.key, key)), None
    )


def targets(route: Route, rule: Rule) -> list[Target]:
    """A's and B's, and where a slug and an id meet, each slug with the other's ids."""
    names = set(route.kwargs)
    if "token" in names:
        slug = "A" if "slug" in names else None
        extra = [Target(slug="B", token="valid")] if slug else []
        return [Target(slug=slug, token="valid"), *extra, Target(slug=slug, token="unknown")]
    if {"slug", "pk"} <= names:
        return [Target(s, o) for s, o in (("A", "A"), ("B", "B"), ("A", "B"), ("B", "A"))]
    if "slug" in names:
        return [Target(slug="A"), Target(slug="B")]
    if "pk" in names or rule.ids_in_body:
        return [Target(obj="A"), Target(obj="B")]
    return [Target()]


def _admin_object(world: World, route: Route, rule: Rule, target: Target) -> int:
    if route.key == "admin:view_on_site":
        return world.sides["A"].app.pk
    app_label, model_name = re.match(r"admin/(\w+)/(\w+)/", route.route).groups()
    model = apps.get_model(app_label, model_name)
    found = world.extra_objects.get(model) or model._default_manager.order_by("pk").first()
    assert found is not None, (
        f"{route.key}: the world has no {model.__name__}: add one in tests/role_world.py"
    )
    return found.pk


KWARGS: dict[str, Callable[[World, Route, Rule, Target], object]] = {
    "slug": lambda w, route, rule, t: w.sides[t.slug].app.slug,
    "pk": lambda w, route, rule, t: w.sides[t.obj].pks[rule.pk],
    "fmt": lambda *_: "json",
    "token": lambda w, route, rule, t: w.feed_token if t.token == "valid" else "no-such-feed-token",
    "object_id": _admin_object,
    "content_type_id": lambda *_: ContentType.objects.get_for_model(Application).pk,
    "id": lambda w, *_: w.users["owner_a"].pk,  # the admin's password change of a user
    "app_label": lambda *_: "certmgr",
    "url": lambda *_: "no-such-page/",  # the admin's catch-all
    "rest": lambda *_: "no-such-resource/",  # the API's catch-all
}


def url_of(route: Route, rule: Rule, world: World, target: Target) -> str:
    missing = [name for name in route.kwargs if name not in KWARGS]
    assert not missing, (
        f"{route.key}: no value for <{', '.join(missing)}>: add it to KWARGS (tests/role_rules.py)"
    )
    values = {name: KWARGS[name](world, route, rule, target) for name in route.kwargs}
    if route.name:
        return reverse(route.name, kwargs=values)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m[1]]), route.route)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m[1]]), path)
    return "/" + path.replace("^", "").replace("$", "")


# --- the answers --------------------------------------------------------------------------------


def outcome(response) -> str:
    code = response.status_code
    login_pages = {reverse("login"), reverse("admin:login")}
    if code in (301, 302, 303) and urlsplit(response["Location"]).path in login_pages:
        return LOGIN
    return OK if 200 <= code < 400 else str(code)


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


AUDIT_TABLE = "certmgr_auditevent"


def digest(without: tuple[str, ...] = ()) -> str:
    """Every row of every table (sessions too) but ``without``'s, hashed."""
    total = hashlib.sha256()
    with connection.cursor() as cursor:
        for table in sorted(set(connection.introspection.table_names(cursor)) - set(without)):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - the catalogue's names
            rows = sorted(repr([bytes(v) if isinstance(v, memoryview) else v for v in row]) for row in cursor)
            total.update(f"{table}:{len(rows)}:{rows}".encode())
    return total.hexdigest()
