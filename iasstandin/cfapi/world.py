"""The organisations, spaces, apps, service instances and bindings a stand-in Cloud Foundry holds.

Read from a JSON document (a file for ``./dev run``, a dict in tests)::

    {"organizations": [{"name": "acme", "spaces": [{"name": "dev", "apps": ["frontend"]}]}],
     "service_offerings": [{"name": "identity", "plans": ["application"]}],
     "service_instances": [{"name": "frontend-ias", "space": "acme/dev", "offering": "identity",
                            "plan": "application",
                            "bindings": [{"type": "app", "app": "frontend", "credentials": {...}},
                                         {"type": "key", "name": "test-key", "credentials": {...}}]}],
     "users": [{"username": "scanner", "password": "...", "role": "space_developer", "spaces": ["acme/dev"]}],
     "clients": [{"client_id": "portal", "client_secret": "...", "role": "admin_read_only"}]}

GUIDs are derived from the names (stable across restarts) unless a ``guid`` is given. Roles follow
Cloud Controller: ``admin_read_only`` sees everything and may read binding credentials;
``space_developer`` sees its spaces and may read their credentials; ``space_auditor`` sees its
spaces but no credentials.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("admin_read_only", "space_developer", "space_auditor")
CREATED = "2026-01-05T10:00:00Z"


def stable_guid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "cf-standin:" + "/".join(parts)))


@dataclass(frozen=True)
class Space:
    guid: str
    name: str
    org_guid: str
    apps: dict[str, str]  # app name -> guid


@dataclass(frozen=True)
class Org:
    guid: str
    name: str


@dataclass(frozen=True)
class Plan:
    guid: str
    name: str
    offering_guid: str


@dataclass(frozen=True)
class Offering:
    guid: str
    name: str


@dataclass(frozen=True)
class Binding:
    guid: str
    type: str  # app | key
    name: str | None
    instance_guid: str
    app_guid: str | None
    credentials: dict = field(repr=False)
    last_operation: dict | None = None


@dataclass(frozen=True)
class Instance:
    guid: str
    name: str
    space_guid: str
    plan_guid: str


@dataclass(frozen=True)
class Principal:
    """A user (password grant) or a client (client credentials) and what it may see."""

    role: str
    spaces: frozenset[str] = frozenset()  # space guids, for the space roles

    def sees(self, space_guid: str) -> bool:
        return self.role == "admin_read_only" or space_guid in self.spaces

    def reads_credentials(self, space_guid: str) -> bool:
        return self.role == "admin_read_only" or (
            self.role == "space_developer" and space_guid in self.spaces
        )


@dataclass
class World:
    orgs: list[Org] = field(default_factory=list)
    spaces: list[Space] = field(default_factory=list)
    offerings: list[Offering] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    bindings: list[Binding] = field(default_factory=list)
    users: dict[str, tuple[str, Principal]] = field(default_factory=dict)  # name -> (password, who)
    clients: dict[str, tuple[str, Principal]] = field(default_factory=dict)  # id -> (secret, who)

    @classmethod
    def load(cls, path: Path | str) -> World:
        return cls.from_dict(json.loads(Path(path).read_text("utf-8")))

    @classmethod
    def from_dict(cls, data: dict) -> World:
        world = cls()
        for org in data.get("organizations", []):
            world._add_org(org)
        for offering in data.get("service_offerings", []):
            world._add_offering(offering)
        for instance in data.get("service_instances", []):
            world._add_instance(instance)
        for user in data.get("users", []):
            world.add_user(
                user["username"],
                user["password"],
                user.get("role", "admin_read_only"),
                user.get("spaces", ()),
            )
        for client in data.get("clients", []):
            world.add_client(
                client["client_id"],
                client["client_secret"],
                client.get("role", "admin_read_only"),
                client.get("spaces", ()),
            )
        return world

    def add_user(self, username: str, password: str, role: str = "admin_read_only", spaces=()) -> None:
        self.users[username] = (password, self._principal(role, spaces))

    def add_client(self, client_id: str, secret: str, role: str = "admin_read_only", spaces=()) -> None:
        self.clients[client_id] = (secret, self._principal(role, spaces))

    def space(self, guid: str) -> Space | None:
        return next((s for s in self.spaces if s.guid == guid), None)

    def org(self, guid: str) -> Org | None:
        return next((o for o in self.orgs if o.guid == guid), None)

    def instance(self, guid: str) -> Instance | None:
        return next((i for i in self.instances if i.guid == guid), None)

    def app(self, guid: str) -> tuple[str, Space] | None:
        for space in self.spaces:
            for name, app_guid in space.apps.items():
                if app_guid == guid:
                    return name, space
        return None

    def _principal(self, role: str, spaces) -> Principal:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
        return Principal(role, frozenset(self._space_by_path(path).guid for path in spaces))

    def _add_org(self, data: dict) -> None:
        org = Org(data.get("guid") or stable_guid("org", data["name"]), data["name"])
        self.orgs.append(org)
        for space in data.get("spaces", []):
            path = f"{org.name}/{space['name']}"
            apps = {name: stable_guid("app", path, name) for name in space.get("apps", [])}
            self.spaces.append(
                Space(space.get("guid") or stable_guid("space", path), space["name"], org.guid, apps)
            )

    def _add_offering(self, data: dict) -> None:
        offering = Offering(data.get("guid") or stable_guid("offering", data["name"]), data["name"])
        self.offerings.append(offering)
        for plan in data.get("plans", []):
            self.plans.append(Plan(stable_guid("plan", offering.name, plan), plan, offering.guid))

    def _add_instance(self, data: dict) -> None:
        space = self._space_by_path(data["space"])
        offering = next(o for o in self.offerings if o.name == data["offering"])
        plan = next(p for p in self.plans if p.offering_guid == offering.guid and p.name == data["plan"])
        guid = data.get("guid") or stable_guid("instance", data["space"], data["name"])
        self.instances.append(Instance(guid, data["name"], space.guid, plan.guid))
        for binding in data.get("bindings", []):
            self.bindings.append(self._binding(binding, guid, space, data["space"], data["name"]))

    def _binding(self, data: dict, instance_guid: str, space: Space, path: str, instance: str) -> Binding:
        kind = data["type"]
        if kind not in ("app", "key"):
            raise ValueError(f"binding type {kind!r}: use app or key")
        app_guid = space.apps[data["app"]] if kind == "app" else None
        name = data.get("name")
        if kind == "key" and not name:
            raise ValueError("a service key needs a name")
        guid = data.get("guid") or stable_guid(
            "binding", path, instance, kind, name or "", data.get("app", "")
        )
        operation = data.get("last_operation", {"type": "create", "state": "succeeded"})
        return Binding(
            guid, kind, name, instance_guid, app_guid, dict(data.get("credentials", {})), operation
        )

    def _space_by_path(self, path: str) -> Space:
        org_name, _, space_name = path.partition("/")
        org = next((o for o in self.orgs if o.name == org_name), None)
        found = next(
            (s for s in self.spaces if org and s.org_guid == org.guid and s.name == space_name), None
        )
        if found is None:
            raise ValueError(f"no space {path!r} in the world (write org/space)")
        return found
