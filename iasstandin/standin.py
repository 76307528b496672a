"""StandIn: the tenant and the backend listeners together, and ``serve`` for the CLI and ``./dev run``."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from .accounts import Accounts
from .app import Backend, Faults, Journal, Lockout, Tenant, TokenRequest, with_faults
from .clients import Registry
from .oidc import Codes
from .pki import Pki
from .tenant import TenantConfig, TenantSettings
from .tlsserver import TlsServer, server_context

# The stand-in takes any client certificate and hands out tokens: it must never face a network.
_BIND = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "::1": "::1"}


class StandIn:
    """A local IAS tenant (client credentials with mTLS, OpenID Connect login), and a protected backend."""

    def __init__(self, directory: Path | str | None = None, host: str = "127.0.0.1", latency: float = 0.0):
        """``latency``: seconds every answer of both listeners waits, as a remote IAS (20-200 ms
        away) would; the listeners serve each connection in its own thread, so waits overlap."""
        if host not in _BIND:
            raise ValueError(f"The IAS stand-in listens on loopback only, not on {host!r}")
        self.host = host
        self.directory = Path(directory) if directory is not None else None
        self.pki = Pki.load_or_create(self.directory) if self.directory else Pki.create()
        self.faults = Faults()
        self.latency = latency  # read per request: it may change while the stand-in runs
        self._registry = Registry(self.directory)
        self._accounts = Accounts(self.directory)
        self._codes = Codes()
        self._journal = Journal()
        self._lockout = Lockout()
        self._tenant_config = TenantConfig(self.directory)
        self._tenant: Tenant | None = None
        self._stopping = threading.Event()
        self._servers: list[TlsServer] = []
        self._url = self._backend_url = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, tenant_port: int = 0, backend_port: int = 0) -> StandIn:
        if self._servers:
            raise RuntimeError("the stand-in is already running")
        context = server_context(self.pki.server_cert, self.pki.server_key)
        address = _BIND[self.host]
        tenant = TlsServer(address, tenant_port, context)
        try:
            backend = TlsServer(address, backend_port, context)
        except OSError:
            tenant.stop()
            raise
        self._url, self._backend_url = self._base(tenant.port), self._base(backend.port)
        current = lambda: self.faults  # noqa: E731 - read per request: tests replace or mutate faults
        latency = lambda: self.latency  # noqa: E731
        tenant_app = Tenant(
            self._url,
            self.pki,
            self._registry,
            current,
            self._journal,
            self._lockout,
            self._accounts,
            self._codes,
            self._tenant_config,
        )
        self._tenant = tenant_app
        backend_app = Backend(self._url, self.pki, current)
        self._stopping.clear()
        tenant.start(with_faults(tenant_app, current, self._stopping.wait, latency))
        backend.start(with_faults(backend_app, current, self._stopping.wait, latency))
        self._servers = [tenant, backend]
        return self

    def stop(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.stop()
        # Then end injected delays: their connections are cut already, so nobody gets a late answer.
        self._stopping.set()

    @property
    def running(self) -> bool:
        return bool(self._servers)

    def __enter__(self) -> StandIn:
        return self if self.running else self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _base(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{port}"

    # --- what clients see ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The tenant URL, which is also the issuer of its tokens."""
        if self._url is None:
            raise RuntimeError("start() the stand-in first")
        return self._url

    @property
    def app_tid(self) -> str:
        """The tenant's id (claim ``app_tid`` of its tokens; a binding's ``app_tid``)."""
        if self._tenant is None:
            raise RuntimeError("start() the stand-in first")
        return self._tenant.app_tid

    @property
    def backend_url(self) -> str:
        if self._backend_url is None:
            raise RuntimeError("start() the stand-in first")
        return self._backend_url

    @property
    def ca_pem(self) -> bytes:
        return self.pki.ca_pem

    @property
    def ca_path(self) -> Path | None:
        return self.directory / "ca.pem" if self.directory else None

    # --- what tests control and inspect ----------------------------------------------------------

    def register(self, client_id: str, certificate_pem: str | bytes) -> None:
        """Register the (first) certificate of ``certificate_pem`` for ``client_id``; others stay."""
        self._registry.register(client_id, certificate_pem)

    def unregister(self, client_id: str) -> None:
        self._registry.unregister(client_id)

    def configure_client(
        self,
        client_id: str,
        *,
        schemeless_issuer: bool = False,
        opaque_tokens: bool = False,
        unbound_tokens: bool = False,
        custom_domain: str = "",
        require_app_tid: bool = False,
    ) -> None:
        """Tenant settings for ``client_id`` (``"*"``: every client without its own); all left out are
        IAS's defaults, so ``configure_client(client_id)`` restores them. See iasstandin/tenant.py."""
        settings = TenantSettings(
            schemeless_issuer=schemeless_issuer,
            opaque_tokens=opaque_tokens,
            unbound_tokens=unbound_tokens,
            custom_domain=custom_domain,
            require_app_tid=require_app_tid,
        )
        self._tenant_config.set(client_id, settings)

    def register_oidc_client(
        self,
        client_id: str,
        client_secret: str | None,
        redirect_uris: list[str],
        *,
        post_logout_redirect_uris: list[str] = (),
    ) -> None:
        """Register (or replace) a confidential OIDC client; redirect URIs are compared exactly.

        ``client_secret=None``: the client has no secret and authenticates at the token endpoint with
        a client certificate registered for ``client_id`` (``register``), as IAS's X509 credential
        types do. A client with a secret may use a registered certificate too.
        """
        self._accounts.register_client(client_id, client_secret, redirect_uris, post_logout_redirect_uris)

    def add_user(
        self,
        login: str,
        password: str,
        *,
        email: str,
        given_name: str = "",
        family_name: str = "",
        groups: list[str] = (),
    ) -> str:
        """Add (or update) a user who logs on with ``login`` or ``email``; returns its id (a UUID)."""
        return self._accounts.add_user(
            login, password, email=email, given_name=given_name, family_name=family_name, groups=groups
        )

    def reset(self) -> None:
        """Faults and tenant settings to defaults, lockouts, records and pending codes cleared;
        registrations and users stay."""
        self.faults.restore_defaults()
        self._tenant_config.clear()
        self._lockout.clear()
        self._journal.clear()
        self._codes.clear()

    @property
    def token_requests(self) -> list[TokenRequest]:
        return self._journal.token_requests

    @property
    def issued_tokens(self) -> list[str]:
        return self._journal.issued_tokens

    @property
    def jwks_requests(self) -> list[dict[str, str]]:
        """Per JWKS request, the x-app_tid, x-client_id and x-azp headers it sent."""
        return self._journal.jwks_requests


def serve(
    directory,
    port: int = 8443,
    backend_port: int = 8444,
    *,
    ready=None,
    host: str = "127.0.0.1",
    latency: float = 0.0,
) -> None:
    """Run a stand-in with persisted state until SIGINT/SIGTERM (or until ``ready``'s caller stops it)."""
    standin = StandIn(directory=directory, host=host, latency=latency).start(port, backend_port)
    done = threading.Event()
    restore = _on_signals(lambda *_: done.set())
    try:
        print(f"IAS stand-in tenant:    {standin.url}", flush=True)
        print(f"Protected backend:      {standin.backend_url}", flush=True)
        where = standin.ca_path.resolve() if standin.ca_path else "(in memory only)"
        print(f"CA to trust:            {where}", flush=True)
        if ready is not None:
            ready(standin)
        # A timeout, so the wait also ends when someone else stopped the stand-in.
        while standin.running and not done.wait(0.5):
            pass
    finally:
        restore()
        standin.stop()


def _on_signals(handler):
    """Install ``handler`` for SIGINT and SIGTERM; returns what puts the previous ones back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # only the main thread may set signal handlers
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(sig, old) for sig, old in previous.items()]
