"""The UAA token endpoint of the stand-in: the password grant of the cf CLI and client credentials.

The cf CLI posts ``grant_type=password&username=..&password=..`` to ``{login}/oauth/token`` with
HTTP Basic ``cf:`` (client ``cf``, empty secret; cloudfoundry/cli api/uaa/auth.go,
util/configv3/defaults.go); ``cf auth --client-credentials`` sends ``client_id`` and
``client_secret`` in the body. Bad credentials get 401 ``{"error": "unauthorized",
"error_description": "Bad credentials"}`` (cloudfoundry/cli api/uaa/error_converter_test.go).
Tokens are opaque random strings here; a client must not look into them anyway.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qs

from ..errors import NO_STORE
from ..tlsserver import Request, Response
from .world import Principal, World

CLI_CLIENT = "cf"


class Tokens:
    """Issued access tokens and who holds them, until they expire."""

    def __init__(self):
        self._lock = threading.Lock()
        self._issued: dict[str, tuple[Principal, float]] = {}

    def issue(self, principal: Principal, lifetime: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._issued[token] = (principal, time.monotonic() + lifetime)
        return token

    def holder(self, token: str) -> Principal | None:
        with self._lock:
            found = self._issued.get(token)
        if found is None or time.monotonic() >= found[1]:
            return None
        return found[0]

    def clear(self) -> None:
        with self._lock:
            self._issued.clear()


class Refused(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


class Uaa:
    def __init__(self, world: Callable[[], World], tokens: Tokens, lifetime: Callable[[], int]):
        self._world, self._tokens, self._lifetime = world, tokens, lifetime

    def __call__(self, request: Request) -> Response:
        if request.path != "/oauth/token":
            return Response.json(404, {"error": "not_found", "error_description": request.path})
        if request.method != "POST":
            return Response.json(405, {"error": "invalid_request", "error_description": "Use POST"})
        try:
            principal = self._authenticate(request, _form(request))
        except Refused as err:
            body = {"error": err.error, "error_description": err.description}
            return Response.json(err.status, body, NO_STORE)
        lifetime = self._lifetime()
        body = {
            "access_token": self._tokens.issue(principal, lifetime),
            "token_type": "bearer",
            "expires_in": lifetime,
            "scope": "cloud_controller.read openid",
            "jti": secrets.token_hex(16),
        }
        return Response.json(200, body, NO_STORE)

    def _authenticate(self, request: Request, form: dict[str, str]) -> Principal:
        grant = form.get("grant_type", "")
        basic = _basic(request)
        world = self._world()
        if grant == "password":
            if basic != (CLI_CLIENT, ""):
                raise Refused(401, "invalid_client", "Bad credentials")
            return _check(world.users, form.get("username", ""), form.get("password", ""))
        if grant == "client_credentials":
            client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
            return _check(world.clients, client_id, secret, error="invalid_client")
        raise Refused(400, "unsupported_grant_type", f"Unsupported grant type: {grant or '(none)'}")


def _check(known: dict, name: str, secret: str, error: str = "unauthorized") -> Principal:
    expected, principal = known.get(name, ("", None))
    # Compared in constant time, and a wrong name costs the same as a wrong secret.
    same = hmac.compare_digest(expected.encode(), secret.encode())
    if principal is None or not same or not secret:
        raise Refused(401, error, "Bad credentials")
    return principal


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        name, _, secret = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Refused(401, "invalid_client", "Bad credentials") from None
    return name, secret


def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise Refused(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
    try:
        parsed = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise Refused(400, "invalid_request", "The request body is not UTF-8") from None
    return {name: values[0] for name, values in parsed.items()}
