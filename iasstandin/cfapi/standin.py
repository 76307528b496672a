"""CloudFoundry: the API and UAA listeners together, what tests break on purpose, and what was asked."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import NamedTuple

from ..app import with_faults
from ..pki import Pki
from ..tlsserver import App, Request, Response, TlsServer, server_context
from .api import CloudController
from .uaa import Tokens, Uaa
from .world import World

_BIND = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "::1": "::1"}


@dataclass
class Faults:
    """What to do wrong; read on every request. The defaults behave like Cloud Foundry."""

    api_status: int | None = None  # every authenticated v3 call answers this status
    delay: dict[str, float] = field(default_factory=dict)  # path -> seconds before answering
    close: set[str] = field(default_factory=set)  # paths answered by closing the connection
    redirect: dict[str, str] = field(default_factory=dict)  # path -> Location of a 302
    login_url: str | None = None  # links.login of the root document
    max_per_page: int = 5000  # Cloud Controller's largest page
    next_href: str | None = None  # pagination.next.href of every page that has a next one
    omit_included_apps: bool = False  # binding lists answer include=app without the apps
    token_lifetime: int = 1199  # seconds

    def restore_defaults(self) -> None:
        for spec in fields(self):
            setattr(self, spec.name, getattr(Faults(), spec.name))


class Call(NamedTuple):
    server: str  # api | uaa
    method: str
    path: str
    query: str
    authorization: str  # none | bearer (a valid token) | invalid | basic
    status: int


class CloudFoundry:
    """A Cloud Foundry API (Cloud Controller v3, read-only) and its UAA, on 127.0.0.1 only."""

    def __init__(
        self, world: World | dict | Path | str | None = None, *, pki: Pki | None = None, host="127.0.0.1"
    ):
        if host not in _BIND:
            raise ValueError(f"The Cloud Foundry stand-in listens on loopback only, not on {host!r}")
        self.host, self.pki = host, pki or Pki.create()
        self.world = _as_world(world)
        self.faults = Faults()
        self._tokens = Tokens()
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._servers: list[TlsServer] = []
        self._url = self._uaa_url = None

    def start(self, api_port: int = 0, uaa_port: int = 0) -> CloudFoundry:
        if self._servers:
            raise RuntimeError("the stand-in is already running")
        context = server_context(self.pki.server_cert, self.pki.server_key)
        api = TlsServer(_BIND[self.host], api_port, context)
        try:
            uaa = TlsServer(_BIND[self.host], uaa_port, context)
        except OSError:
            api.stop()
            raise
        self._url, self._uaa_url = self._base(api.port), self._base(uaa.port)
        world, faults = (lambda: self.world), (lambda: self.faults)
        links = {"login": self._uaa_url, "uaa": self._uaa_url}
        controller = CloudController(self._url, world, self._tokens, faults, links)
        token_endpoint = Uaa(world, self._tokens, lambda: self.faults.token_lifetime)
        self._stopping.clear()
        api.start(self._recorded("api", with_faults(controller, faults, self._stopping.wait)))
        uaa.start(self._recorded("uaa", with_faults(token_endpoint, faults, self._stopping.wait)))
        self._servers = [api, uaa]
        return self

    def stop(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.stop()
        self._stopping.set()

    def __enter__(self) -> CloudFoundry:
        return self if self._servers else self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return bool(self._servers)

    @property
    def url(self) -> str:
        """The API's URL (what CERTMGR_CF_API names)."""
        if self._url is None:
            raise RuntimeError("start() the stand-in first")
        return self._url

    @property
    def uaa_url(self) -> str:
        if self._uaa_url is None:
            raise RuntimeError("start() the stand-in first")
        return self._uaa_url

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def add_user(self, username: str, password: str, role: str = "admin_read_only", spaces=()) -> None:
        self.world.add_user(username, password, role, spaces)

    def add_client(self, client_id: str, secret: str, role: str = "admin_read_only", spaces=()) -> None:
        self.world.add_client(client_id, secret, role, spaces)

    def reset(self) -> None:
        """Faults to defaults, no tokens, no calls recorded; the world stays."""
        self.faults.restore_defaults()
        self._tokens.clear()
        with self._lock:
            self._calls.clear()

    def _base(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{port}"

    def _recorded(self, server: str, app: App) -> App:
        def recorded(request: Request) -> Response | None:
            response = app(request)
            call = Call(
                server,
                request.method,
                request.path,
                request.query,
                self._authorization(request),
                response.status if response else 0,
            )
            with self._lock:
                self._calls.append(call)
            return response

        return recorded

    def _authorization(self, request: Request) -> str:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            return "basic"
        if scheme.lower() != "bearer":
            return "none"
        return "bearer" if self._tokens.holder(value.strip()) else "invalid"


def _as_world(world) -> World:
    if world is None:
        return World()
    if isinstance(world, World):
        return world
    if isinstance(world, dict):
        return World.from_dict(world)
    return World.load(world)
