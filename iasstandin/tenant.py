"""Tenant settings a real IAS tenant may have, switchable per client: in memory, or in ``tenant.json``.

Each is legal IAS behaviour that a checker must accept (SAP-docs/btp-cloud-identity-services and
SAP's security libraries):

- ``schemeless_issuer``: the tenant's issuer URL format without the protocol (``iss`` =
  ``host[:port]``); the discovery document's note "an issuer URL without the protocol".
- ``opaque_tokens``: the application's token policy issues opaque access tokens; a JWT only when
  the token request says ``token_format=jwt`` (token endpoint, request parameter ``token_format``).
- ``unbound_tokens``: access tokens without a ``cnf`` claim.
- ``custom_domain``: ``iss`` is this URL, ``ias_iss`` the tenant URL (claim ``ias_iss``).
- ``require_app_tid``: token requests must name the tenant's ``app_tid`` (a "Reserved" request
  parameter in SAP's docs; IAS's error for it is not documented: 400 ``invalid_request`` here).

The client id ``"*"`` sets the whole tenant (every client without its own entry), e.g. for
``./dev run``: ``python -m iasstandin.tenant --directory .local/sandbox --client '*' --schemeless-issuer``.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

from .errors import TokenError
from .pki import Watched, atomic_write, locked_file

log = logging.getLogger("iasstandin")
TENANT_FILE = "tenant.json"
EVERY_CLIENT = "*"
TOKEN_FORMATS = ("jwt", "opaque")  # the token endpoint's token_format parameter (SAP-docs)


@dataclass(frozen=True)
class TenantSettings:
    """How the tenant treats one client; the defaults are a tenant as IAS sets one up."""

    schemeless_issuer: bool = False
    opaque_tokens: bool = False
    unbound_tokens: bool = False
    custom_domain: str = ""  # an https URL (no path): iss of tokens; ias_iss is then the tenant
    require_app_tid: bool = False

    def __post_init__(self):
        for spec in fields(self):
            value = getattr(self, spec.name)
            if not isinstance(value, str if spec.name == "custom_domain" else bool):
                raise ValueError(f"tenant setting {spec.name} has the wrong type: {value!r}")
        if self.custom_domain:
            parts = urlsplit(self.custom_domain)
            if parts.scheme != "https" or not parts.hostname or parts.path or parts.query or parts.fragment:
                raise ValueError(f"custom_domain must be an https URL without a path: {self.custom_domain!r}")

    def issuer_claims(self, tenant_url: str) -> dict[str, str]:
        """``iss`` (and ``ias_iss`` with a custom domain) of the tokens this tenant issues."""
        if self.custom_domain:
            return {"iss": self.custom_domain, "ias_iss": tenant_url}
        if self.schemeless_issuer:
            return {"iss": tenant_url.removeprefix("https://")}
        return {"iss": tenant_url}

    def checked(self, form: dict[str, str], app_tid: str) -> TenantSettings:
        """These settings, once a token request's parameters suit them (TokenError otherwise)."""
        if form.get("token_format", "jwt") not in TOKEN_FORMATS:
            raise TokenError(400, "invalid_request", f"Unsupported token_format {form['token_format']!r}")
        if self.require_app_tid and form.get("app_tid") != app_tid:
            # SAP's docs name no error for this; invalid_request is RFC 6749's for a wrong parameter.
            raise TokenError(
                400, "invalid_request", "The app_tid parameter is missing or names another tenant"
            )
        return self

    def opaque(self, asked: str | None) -> bool:
        """An opaque access token: asked for (token_format), or the token policy when no JWT is asked for."""
        return asked == "opaque" or (self.opaque_tokens and asked != "jwt")

    def to_json(self) -> dict:
        defaults = TenantSettings()
        return {name: value for name, value in asdict(self).items() if value != getattr(defaults, name)}


def reference_token() -> str:
    """An opaque reference token: random, nothing in it to decode."""
    return secrets.token_urlsafe(32)


def _parse(data) -> dict[str, TenantSettings]:
    if not isinstance(data, dict):
        raise ValueError("not an object of client id -> settings")
    try:
        return {str(client): TenantSettings(**entry) for client, entry in data.items()}
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def _read(path: Path) -> dict[str, TenantSettings]:
    try:
        return _parse(json.loads(path.read_text("utf-8")))
    except FileNotFoundError:
        return {}
    except ValueError as exc:  # JSON errors are ValueErrors too
        raise ValueError(f"{path}: {exc}") from None


def _write(path: Path, settings: dict[str, TenantSettings]) -> None:
    data = {client: entry.to_json() for client, entry in settings.items()}
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True).encode("utf-8"), 0o600)


def set_tenant_settings_in_directory(directory, client_id: str, settings: TenantSettings) -> None:
    """Set (defaults: remove) ``client_id``'s settings in ``directory/tenant.json``; a running stand-in
    picks them up at its next request."""
    if not client_id:
        raise ValueError("client_id must not be empty")
    with locked_file(Path(directory), TENANT_FILE) as path:
        current = _read(path)
        if settings == TenantSettings():
            current.pop(client_id, None)
        else:
            current[client_id] = settings
        _write(path, current)


class TenantConfig:
    """The settings of every client, looked up per request (``tenant.json`` re-read when it changed)."""

    def __init__(self, directory: Path | None = None):
        self._directory = directory
        path = directory / TENANT_FILE if directory is not None else None
        self._watched = Watched(path, _read, {}, "tenant settings")

    def set(self, client_id: str, settings: TenantSettings) -> None:
        if self._directory is not None:
            set_tenant_settings_in_directory(self._directory, client_id, settings)
            return
        with self._watched.lock:
            self._watched.value = {**self._watched.value, client_id: settings}

    def clear(self) -> None:
        if self._directory is not None:
            with locked_file(self._directory, TENANT_FILE) as path:
                path.unlink(missing_ok=True)
        with self._watched.lock:
            self._watched.value = {}

    def of(self, client_id: str | None) -> TenantSettings:
        settings = self._current()
        return settings.get(client_id or "") or settings.get(EVERY_CLIENT) or TenantSettings()

    def _current(self) -> dict[str, TenantSettings]:
        return self._watched.current()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m iasstandin.tenant",
        description="Set a client's tenant settings in a stand-in's directory (no flags: IAS's defaults).",
    )
    parser.add_argument("--directory", default=".local/sandbox", help="the stand-in's directory")
    parser.add_argument("--client", required=True, help="client id, or * for every client")
    parser.add_argument("--schemeless-issuer", action="store_true", help="iss without https://")
    parser.add_argument("--opaque-tokens", action="store_true", help="a JWT only with token_format=jwt")
    parser.add_argument("--unbound-tokens", action="store_true", help="no cnf claim")
    parser.add_argument("--custom-domain", default="", help="iss = this https URL, ias_iss = the tenant")
    parser.add_argument("--require-app-tid", action="store_true", help="token requests must send app_tid")
    args = parser.parse_args(argv)
    try:
        settings = TenantSettings(
            schemeless_issuer=args.schemeless_issuer,
            opaque_tokens=args.opaque_tokens,
            unbound_tokens=args.unbound_tokens,
            custom_domain=args.custom_domain,
            require_app_tid=args.require_app_tid,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        set_tenant_settings_in_directory(args.directory, args.client, settings)
    except ValueError as exc:  # a broken tenant.json: name it instead of overwriting it
        parser.error(str(exc))
    print(f"{args.client}: {json.dumps(settings.to_json()) if settings.to_json() else 'IAS defaults'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
