"""The Cloud Controller v3 routes the portal's scan reads, shaped as cloudfoundry/cloud_controller_ng
documents them (docs/v3/source/includes/...): the root document, paginated lists with their
filters and ``include``, a binding's ``/details``, ``/v3/apps/:guid``.

What the reference says and the stand-in does: lists answer ``{"pagination": {total_results,
total_pages, first, last, next, previous}, "resources": [...]}`` with ``next`` null on the last
page and ``per_page`` 1..5000 (default 50); unknown query parameters get 400
``CF-BadQueryParameter``; a missing token 401 ``CF-NotAuthenticated``, a bad one 401
``CF-InvalidAuthToken``. ``/details`` is for Admin, Admin Read-Only and Space Developer only;
anyone else, and a binding whose creation has not succeeded, gets 404 (service_credential_bindings
_controller.rb: ``not_found! unless can_read_secrets_in_the_binding_space?``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode

from ..tlsserver import Request, Response
from .uaa import Tokens
from .world import CREATED, Binding, Principal, World

PAGING = {"page", "per_page", "order_by"}
FILTERS = {
    "organizations": {"names", "guids"},
    "spaces": {"names", "guids", "organization_guids", "include"},
    "service_offerings": {"names", "available", "space_guids", "organization_guids"},
    "service_plans": {"names", "service_offering_guids", "service_offering_names", "include"},
    "service_instances": {
        "names",
        "guids",
        "type",
        "space_guids",
        "organization_guids",
        "service_plan_guids",
    },
    "service_credential_bindings": {
        "names",
        "service_instance_guids",
        "app_guids",
        "type",
        "include",
        "guids",
    },
}
INCLUDES = {"spaces": {"organization"}, "service_credential_bindings": {"app", "service_instance"}}
DETAILS = re.compile(r"/v3/service_credential_bindings/([0-9a-f-]{36})/details")
BINDING = re.compile(r"/v3/service_credential_bindings/([0-9a-f-]{36})")
APP = re.compile(r"/v3/apps/([0-9a-f-]{36})")


class BadQuery(Exception):
    pass


def error(status: int, code: int, title: str, detail: str) -> Response:
    return Response.json(status, {"errors": [{"code": code, "title": title, "detail": detail}]})


def not_found(detail: str = "Unknown request") -> Response:
    return error(404, 10010, "CF-ResourceNotFound", detail)


class CloudController:
    def __init__(self, base: str, world: Callable[[], World], tokens: Tokens, faults, links: dict[str, str]):
        self.base, self._world, self._tokens, self._faults, self._links = base, world, tokens, faults, links

    def __call__(self, request: Request) -> Response:
        if request.method != "GET":  # the portal only reads; a write would be a bug worth seeing
            return error(405, 10000, "CF-NotSupported", "The stand-in serves GET only")
        if request.path in ("", "/"):
            return Response.json(200, self._root())
        if request.path.rstrip("/") == "/v3":
            return Response.json(200, {"links": {"self": {"href": f"{self.base}/v3"}}})
        principal = self._principal(request)
        if isinstance(principal, Response):
            return principal
        status = self._faults().api_status
        if status:
            return error(status, 10001, "UnknownError", "An unknown error occurred.")
        try:
            return self._route(request, principal, _params(request.query))
        except BadQuery as exc:
            return error(400, 10005, "CF-BadQueryParameter", str(exc))

    def _principal(self, request: Request) -> Principal | Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return error(401, 10002, "CF-NotAuthenticated", "Authentication error")
        holder = self._tokens.holder(token.strip())
        if holder is None:
            return error(401, 1000, "CF-InvalidAuthToken", "Invalid Auth Token")
        return holder

    def _root(self) -> dict:
        login = self._faults().login_url or self._links["login"]
        return {
            "links": {
                "self": {"href": self.base},
                "cloud_controller_v3": {"href": f"{self.base}/v3", "meta": {"version": "3.180.0"}},
                "login": {"href": login},
                "uaa": {"href": self._links["uaa"]},
                "credhub": None,
            }
        }

    def _route(self, request: Request, who: Principal, params: dict[str, list[str]]) -> Response:
        path = request.path.rstrip("/")
        world = self._world()
        if match := DETAILS.fullmatch(path):
            return self._details(world, who, match.group(1))
        if match := BINDING.fullmatch(path):
            binding = next((b for b in world.bindings if b.guid == match.group(1)), None)
            if binding is None or not who.sees(world.instance(binding.instance_guid).space_guid):
                return not_found("Service credential binding not found")
            return Response.json(200, self._binding(binding))
        if match := APP.fullmatch(path):
            return self._app(world, who, match.group(1), params)
        collection = path.removeprefix("/v3/")
        if collection not in FILTERS:
            return not_found()
        _check_params(collection, params)
        resources, included = getattr(self, f"_list_{collection}")(world, who, params)
        return Response.json(200, self._page(collection, resources, included, params))

    def _page(self, collection: str, resources: list, included: dict, params) -> dict:
        per_page = _number(params, "per_page", 50, 5000)
        page = _number(params, "page", 1, None)
        per_page = min(per_page, self._faults().max_per_page)
        last = max(1, math.ceil(len(resources) / per_page))

        def href(number: int) -> dict:
            query = {k: ",".join(v) for k, v in params.items() if k not in ("page", "per_page")}
            query.update(page=str(number), per_page=str(per_page))
            return {"href": f"{self.base}/v3/{collection}?{urlencode(query)}"}

        following = self._faults().next_href
        pagination = {
            "total_results": len(resources),
            "total_pages": last,
            "first": href(1),
            "last": href(last),
            "next": ({"href": following} if following else href(page + 1)) if page < last else None,
            "previous": href(page - 1) if page > 1 else None,
        }
        chunk = resources[(page - 1) * per_page : page * per_page]
        document = {"pagination": pagination, "resources": chunk}
        if included:
            document["included"] = included
        return document

    # --- the collections -------------------------------------------------------------------------

    def _list_organizations(self, world: World, who: Principal, params):
        visible = {s.org_guid for s in world.spaces if who.sees(s.guid)}
        orgs = [o for o in world.orgs if o.guid in visible or who.role == "admin_read_only"]
        orgs = _filter(orgs, params, names=lambda o: o.name.lower(), guids=lambda o: o.guid)
        return [self._org(o) for o in orgs], {}

    def _list_spaces(self, world: World, who: Principal, params):
        spaces = [s for s in world.spaces if who.sees(s.guid)]
        spaces = _filter(
            spaces,
            params,
            names=lambda s: s.name.lower(),
            guids=lambda s: s.guid,
            organization_guids=lambda s: s.org_guid,
        )
        included = {}
        if "organization" in _includes("spaces", params):
            guids = {s.org_guid for s in spaces}
            included["organizations"] = [self._org(o) for o in world.orgs if o.guid in guids]
        return [self._space(s) for s in spaces], included

    def _list_service_offerings(self, world: World, who: Principal, params):
        offerings = _filter(world.offerings, params, names=lambda o: o.name.lower())
        return [self._offering(o) for o in offerings], {}

    def _list_service_plans(self, world: World, who: Principal, params):
        names = {o.guid: o.name.lower() for o in world.offerings}
        plans = _filter(
            world.plans,
            params,
            names=lambda p: p.name.lower(),
            service_offering_guids=lambda p: p.offering_guid,
            service_offering_names=lambda p: names[p.offering_guid],
        )
        return [self._plan(p) for p in plans], {}

    def _list_service_instances(self, world: World, who: Principal, params):
        org_of = {s.guid: s.org_guid for s in world.spaces}
        instances = [i for i in world.instances if who.sees(i.space_guid)]
        instances = _filter(
            instances,
            params,
            exact_names=True,
            names=lambda i: i.name,
            guids=lambda i: i.guid,
            type=lambda i: "managed",
            space_guids=lambda i: i.space_guid,
            organization_guids=lambda i: org_of[i.space_guid],
            service_plan_guids=lambda i: i.plan_guid,
        )
        return [self._instance(i) for i in instances], {}

    def _list_service_credential_bindings(self, world: World, who: Principal, params):
        space_of = {i.guid: i.space_guid for i in world.instances}
        bindings = [b for b in world.bindings if who.sees(space_of[b.instance_guid])]
        bindings = _filter(
            bindings,
            params,
            exact_names=True,
            names=lambda b: b.name or "",
            guids=lambda b: b.guid,
            service_instance_guids=lambda b: b.instance_guid,
            app_guids=lambda b: b.app_guid or "",
            type=lambda b: b.type,
        )
        includes, included = _includes("service_credential_bindings", params), {}
        if "app" in includes and not self._faults().omit_included_apps:
            apps = {b.app_guid for b in bindings if b.app_guid}
            included["apps"] = [self._app_resource(world, guid) for guid in sorted(apps)]
        if "service_instance" in includes:
            guids = {b.instance_guid for b in bindings}
            included["service_instances"] = [self._instance(i) for i in world.instances if i.guid in guids]
        return [self._binding(b) for b in bindings], included

    # --- single resources ------------------------------------------------------------------------

    def _details(self, world: World, who: Principal, guid: str) -> Response:
        binding = next((b for b in world.bindings if b.guid == guid), None)
        space = world.instance(binding.instance_guid).space_guid if binding else None
        if binding is None or not who.sees(space) or not who.reads_credentials(space):
            return not_found("Service credential binding not found")
        operation = binding.last_operation or {"type": "create", "state": "succeeded"}
        if operation.get("type") != "create" or operation.get("state") != "succeeded":
            kind = "key" if binding.type == "key" else "binding"
            what = "Creation" if operation.get("type") == "create" else "Deletion"
            return not_found(f"{what} of service {kind} {operation.get('state')}")
        return Response.json(200, {"credentials": binding.credentials})

    def _app(self, world: World, who: Principal, guid: str, params) -> Response:
        found = world.app(guid)
        if found is None or not who.sees(found[1].guid):
            return not_found("App not found")
        return Response.json(200, self._app_resource(world, guid))

    # --- how each resource looks -----------------------------------------------------------------

    def _common(self, kind: str, guid: str, name: str | None) -> dict:
        return {
            "guid": guid,
            "created_at": CREATED,
            "updated_at": CREATED,
            "name": name,
            "metadata": {"labels": {}, "annotations": {}},
            "links": {"self": {"href": f"{self.base}/v3/{kind}/{guid}"}},
        }

    def _org(self, org) -> dict:
        return {**self._common("organizations", org.guid, org.name), "suspended": False}

    def _space(self, space) -> dict:
        body = self._common("spaces", space.guid, space.name)
        body["relationships"] = {"organization": {"data": {"guid": space.org_guid}}, "quota": {"data": None}}
        body["links"]["organization"] = {"href": f"{self.base}/v3/organizations/{space.org_guid}"}
        return body

    def _offering(self, offering) -> dict:
        body = self._common("service_offerings", offering.guid, offering.name)
        features = {"bindable": True, "bindings_retrievable": True, "instances_retrievable": True}
        body.update(available=True, tags=[], requires=[], shareable=False, description=offering.name)
        body["broker_catalog"] = {"id": offering.guid, "metadata": {}, "features": features}
        return body

    def _plan(self, plan) -> dict:
        body = self._common("service_plans", plan.guid, plan.name)
        body.update(visibility_type="public", available=True, free=False)
        body["relationships"] = {"service_offering": {"data": {"guid": plan.offering_guid}}}
        return body

    def _instance(self, instance) -> dict:
        body = self._common("service_instances", instance.guid, instance.name)
        body.update(type="managed", tags=[], upgrade_available=False)
        body["last_operation"] = {
            "type": "create",
            "state": "succeeded",
            "description": "",
            "created_at": CREATED,
            "updated_at": CREATED,
        }
        body["relationships"] = {
            "service_plan": {"data": {"guid": instance.plan_guid}},
            "space": {"data": {"guid": instance.space_guid}},
        }
        bindings = f"{self.base}/v3/service_credential_bindings?service_instance_guids={instance.guid}"
        body["links"]["service_credential_bindings"] = {"href": bindings}
        return body

    def _binding(self, binding: Binding) -> dict:
        body = self._common("service_credential_bindings", binding.guid, binding.name)
        body["type"] = binding.type
        operation = binding.last_operation
        body["last_operation"] = (
            {**operation, "created_at": CREATED, "updated_at": CREATED} if operation else None
        )
        body["relationships"] = {"service_instance": {"data": {"guid": binding.instance_guid}}}
        links = body["links"]
        links["details"] = {"href": f"{self.base}/v3/service_credential_bindings/{binding.guid}/details"}
        links["service_instance"] = {"href": f"{self.base}/v3/service_instances/{binding.instance_guid}"}
        if binding.type == "app":
            body["relationships"]["app"] = {"data": {"guid": binding.app_guid}}
            links["app"] = {"href": f"{self.base}/v3/apps/{binding.app_guid}"}
        return body

    def _app_resource(self, world: World, guid: str) -> dict:
        name, space = world.app(guid)
        body = self._common("apps", guid, name)
        body.update(state="STARTED", lifecycle={"type": "buildpack", "data": {}})
        body["relationships"] = {"space": {"data": {"guid": space.guid}}}
        return body


def _params(query: str) -> dict[str, list[str]]:
    parsed = parse_qs(query, keep_blank_values=True)
    # A comma-delimited list may also come as repeated parameters; CC reads the last one.
    return {name: [item for item in values[-1].split(",") if item] for name, values in parsed.items()}


def _check_params(collection: str, params) -> None:
    unknown = sorted(set(params) - FILTERS[collection] - PAGING)
    if unknown:
        raise BadQuery("Unknown query parameter(s): " + ", ".join(f"'{name}'" for name in unknown))


def _includes(collection: str, params) -> set[str]:
    wanted = set(params.get("include", []))
    bad = wanted - INCLUDES.get(collection, set())
    if bad:
        raise BadQuery(f"Invalid included resource: '{sorted(bad)[0]}'")
    return wanted


def _number(params, name: str, default: int, largest: int | None) -> int:
    raw = (params.get(name) or [str(default)])[0]
    if not raw.isdigit() or int(raw) < 1 or (largest and int(raw) > largest):
        limit = f"between 1 and {largest}" if largest else "a positive integer"
        raise BadQuery(f"{name.replace('_', ' ').capitalize()} must be {limit}")
    return int(raw)


def _filter(items: list, params, exact_names: bool = False, **keys) -> list:
    """Keep the items whose key is among the requested values, for every filter given. Names are
    compared case-insensitively (the key lowercases them) except where CC says case-sensitive."""
    for name, key in keys.items():
        if name in params:
            folded = name == "names" and not exact_names
            wanted = {value.lower() for value in params[name]} if folded else set(params[name])
            items = [item for item in items if key(item) in wanted]
    return items
