"""The routes: the IAS tenant (discovery, JWKS, token) and the protected backend (/hello, /cert/hello).

Each is a plain callable from Request to Response, so the rules read without any server around them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import parse_qs

from . import jwt
from .accounts import Accounts
from .clients import Registry
from .errors import NO_STORE, TokenError, invalid_token
from .oidc import AUTHORIZE_PATH, BASIC_CHALLENGE, LOGOUT_PATH, SCOPES, USERINFO_PATH, Codes, Oidc
from .pki import Pki, certificate_thumbprint, key_id, new_signing_key
from .tenant import TenantConfig, TenantSettings, reference_token
from .tlsserver import App, Request, Response

TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a URL path, not a secret
JWKS_PATH = "/oauth2/certs"
JWKS_HEADERS = ("x-app_tid", "x-client_id", "x-azp")  # sent by SAP's libraries; "Reserved" in SAP-docs
CLIENT_CREDENTIALS, AUTHORIZATION_CODE = "client_credentials", "authorization_code"
BACKEND_LEEWAY = 60  # seconds of clock skew the backend forgives on exp, as the tutorial's does


@dataclass
class Faults:
    """What to do wrong; read on every request, so a test may change it while the stand-in runs.

    The defaults behave like IAS.
    """

    issuer: str | None = None  # iss of issued tokens
    audience: str | list | None = None  # aud of issued tokens
    token_lifetime: int = 3600  # exp = iat + this; negative: expired when issued
    sign_with_unknown_key: bool = False  # a key whose kid the JWKS does not list
    sign_with_wrong_key_same_kid: bool = False  # another key under the published kid
    cnf_thumbprint: str | None = None  # cnf.x5t#S256 of issued tokens
    delay: dict[str, float] = field(default_factory=dict)  # path -> seconds before answering
    close: set[str] = field(default_factory=set)  # paths answered by closing the connection
    redirect: dict[str, str] = field(default_factory=dict)  # path -> Location of a 302
    backend_status: int | None = None  # the backend answers every request with this status
    # OpenID Connect login: the ID token's claims and signature (the access token follows the above)
    id_token_issuer: str | None = None  # iss of issued ID tokens
    id_token_audience: str | list | None = None  # aud of issued ID tokens
    id_token_lifetime: int = 3600  # exp = iat + this
    id_token_nonce: str | None = None  # nonce of issued ID tokens instead of the request's
    id_token_sign_with_unknown_key: bool = False  # a key whose kid the JWKS does not list

    def restore_defaults(self) -> None:
        # In place, so whoever holds this object sees the reset too.
        for spec in fields(self):
            setattr(self, spec.name, getattr(Faults(), spec.name))


class TokenRequest(NamedTuple):
    client_id: str | None
    thumbprint: str | None  # of the client certificate presented, None without one
    status: int
    token_format: str | None = None  # the request's token_format parameter, None without one
    app_tid: str | None = None  # the request's app_tid parameter, None without one


class Journal:
    """What the tenant was asked and what it issued, for tests to inspect."""

    def __init__(self):
        self._lock = threading.Lock()
        self.token_requests: list[TokenRequest] = []
        self.issued_tokens: list[str] = []
        self.jwks_requests: list[dict[str, str]] = []  # the JWKS_HEADERS each JWKS request sent

    def record(self, entry: TokenRequest, token: str | None = None) -> None:
        with self._lock:
            self.token_requests.append(entry)
            if token:
                self.issued_tokens.append(token)

    def record_jwks(self, headers: dict[str, str]) -> None:
        with self._lock:
            self.jwks_requests.append(headers)

    def clear(self) -> None:
        with self._lock:
            self.token_requests.clear()
            self.issued_tokens.clear()
            self.jwks_requests.clear()


class Lockout:
    """IAS locks a client id for 60 minutes after 5 failed logins within 60 minutes."""

    ATTEMPTS, WINDOW, LOCKED_FOR = 5, 3600, 3600

    def __init__(self):
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}
        self._until: dict[str, float] = {}

    def locked(self, client_id: str, now: float) -> bool:
        with self._lock:
            until = self._until.get(client_id)
            if until is not None and now >= until:
                del self._until[client_id]
                self._failures.pop(client_id, None)
                until = None
            return until is not None

    def failed(self, client_id: str, now: float) -> None:
        with self._lock:
            recent = [t for t in self._failures.get(client_id, []) if now - t < self.WINDOW] + [now]
            self._failures[client_id] = recent
            if len(recent) >= self.ATTEMPTS:
                self._until[client_id] = now + self.LOCKED_FOR

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._until.clear()


LOCKED = "The client is locked for 60 minutes after too many failed logins"
NOT_REGISTERED = "The client certificate is not registered for this client id"


class Tenant:
    """The IAS tenant at ``url``: discovery, JWKS, the client-credentials grant with mTLS, and OIDC login.

    OIDC clients redeem their codes with a secret or, like the client-credentials grant, a registered
    client certificate (tls_client_auth).
    """

    def __init__(
        self,
        url: str,
        pki: Pki,
        registry: Registry,
        faults: Callable[[], Faults],
        journal: Journal,
        lockout: Lockout,
        accounts: Accounts | None = None,
        codes: Codes | None = None,
        tenant: TenantConfig | None = None,
    ):
        self.url, self.pki, self.registry, self.journal, self.lockout = url, pki, registry, journal, lockout
        self._faults = faults
        self.tenant = tenant or TenantConfig()
        self.app_tid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"iasstandin:{pki.kid}"))
        self._rogue_key = None
        self._rogue_lock = threading.Lock()
        # Computed once: they never change while the tenant runs, and benchmarks hit them hard.
        self._discovery = _json_bytes(self._discovery_document())
        self._jwks = _json_bytes({"keys": [jwt.jwk(pki.signing_key.public_key(), pki.kid)]})
        keys = {pki.kid: pki.signing_key.public_key()}
        self.oidc = Oidc(url, accounts or Accounts(), codes or Codes(), self._sign, keys, self.app_tid)
        self._routes = {
            "/.well-known/openid-configuration": (("GET",), lambda _: self._static(self._discovery)),
            JWKS_PATH: (("GET",), self._jwks_request),
            TOKEN_PATH: (("POST",), self._token),
            **self.oidc.routes(),
        }

    def __call__(self, request: Request) -> Response:
        methods, route = self._routes.get(request.path, ((), None))
        if route is None:
            return Response.json(404, {"error": "not_found", "error_description": request.path})
        if request.method not in methods:
            allowed = " or ".join(methods)
            return Response.json(405, {"error": "invalid_request", "error_description": f"Use {allowed}"})
        return route(request)

    def _discovery_document(self) -> dict:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}{AUTHORIZE_PATH}",
            "token_endpoint": f"{self.url}{TOKEN_PATH}",
            "userinfo_endpoint": f"{self.url}{USERINFO_PATH}",
            "end_session_endpoint": f"{self.url}{LOGOUT_PATH}",
            "jwks_uri": f"{self.url}{JWKS_PATH}",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "subject_types_supported": ["public"],
            "scopes_supported": list(SCOPES),
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["client_credentials", "authorization_code"],
            "token_endpoint_auth_methods_supported": [
                "tls_client_auth",
                "client_secret_basic",
                "client_secret_post",
            ],
            "tls_client_certificate_bound_access_tokens": True,
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": [
                "iss",
                "sub",
                "aud",
                "azp",
                "iat",
                "exp",
                "auth_time",
                "nonce",
                "sid",
                "email",
                "given_name",
                "family_name",
                "groups",
                "user_uuid",
                "ias_iss",
                "at_hash",
            ],
        }

    @staticmethod
    def _static(body: bytes) -> Response:
        return Response(200, body, {"Content-Type": "application/json"})

    def _jwks_request(self, request: Request) -> Response:
        sent = {name: request.headers[name] for name in JWKS_HEADERS if request.headers.get(name) is not None}
        self.journal.record_jwks(sent)
        if "x-app_tid" in sent and sent["x-app_tid"] != self.app_tid:
            # IAS's answer to a foreign x-app_tid, per the mock of SAP/cloud-security-client-go.
            return Response.json(400, {"msg": "Invalid app_tid provided"})
        return self._static(self._jwks)

    def _token(self, request: Request) -> Response:
        thumb = certificate_thumbprint(request.peer_cert) if request.peer_cert else None
        client_id, token, faults, form = None, None, self._faults(), {}
        try:
            form = _form(request)
            if form["grant_type"] == AUTHORIZATION_CODE:
                client_id, secret = self.oidc.client_credentials(request, form)
                if secret is None:  # tls_client_auth: the certificate stands in for the secret
                    self._authenticate_by_certificate(request, form, client_id, thumb)
                else:
                    self._check_lock(client_id)
                self.oidc.check_client(client_id, secret)
                settings = self.tenant.of(client_id).checked(form, self.app_tid)
                body, token = self.oidc.exchange(form, client_id, faults, settings)
            else:
                client_id = form.get("client_id")
                self._authenticate(request, form, client_id, thumb)
                settings = self.tenant.of(client_id).checked(form, self.app_tid)
                opaque = settings.opaque(form.get("token_format"))
                token = reference_token() if opaque else self._issue(faults, settings, client_id, thumb)
                body = {"access_token": token, "token_type": "Bearer", "expires_in": faults.token_lifetime}
            response = Response.json(200, body, NO_STORE)
        except TokenError as err:
            if err.status == 401 and client_id and err.description != LOCKED:
                self.lockout.failed(client_id, time.time())
            response = err.response()
        entry = TokenRequest(client_id, thumb, response.status, form.get("token_format"), form.get("app_tid"))
        self.journal.record(entry, token)
        return response

    def _check_lock(self, client_id: str) -> None:
        if self.lockout.locked(client_id, time.time()):
            raise TokenError(401, "invalid_client", LOCKED)

    def _authenticate_by_certificate(
        self, request: Request, form: dict, client_id: str | None, thumb: str | None
    ) -> None:
        """An authorization code request without a secret: the client certificate must do, as for client_credentials."""
        if not client_id:
            if request.peer_cert is None:
                raise TokenError(401, "invalid_client", "No client authentication was sent", BASIC_CHALLENGE)
            raise TokenError(400, "invalid_request", "The client_id parameter is missing")
        try:
            self._authenticate(request, form, client_id, thumb)
        except TokenError as err:
            if request.peer_cert is None:  # neither a secret nor a certificate: a secret would do too
                err.headers = {**BASIC_CHALLENGE, **err.headers}
            raise

    def _authenticate(self, request: Request, form: dict, client_id: str, thumb: str | None) -> None:
        self._check_lock(client_id)
        authorization = request.headers.get("Authorization", "")
        if "client_secret" in form or authorization.lower().startswith("basic "):
            raise TokenError(
                401, "invalid_client", "A client secret was sent; this client must use its certificate"
            )
        if request.peer_cert is None:
            raise TokenError(401, "invalid_client", "No client certificate was presented")
        if not self.registry.knows(client_id, thumb):
            raise TokenError(401, "invalid_client", NOT_REGISTERED)
        # IAS's own clock decides, not OpenSSL's (the handshake took any certificate).
        now = datetime.fromtimestamp(time.time(), UTC)
        if now > request.peer_cert.not_valid_after_utc:
            raise TokenError(401, "invalid_client", "The client certificate has expired")
        if now < request.peer_cert.not_valid_before_utc:
            raise TokenError(401, "invalid_client", "The client certificate is not yet valid")

    def _issue(self, faults: Faults, settings: TenantSettings, client_id: str, thumb: str) -> str:
        iat = int(time.time())
        claims = {
            **settings.issuer_claims(self.url),
            "sub": client_id,
            "azp": client_id,
            "aud": faults.audience if faults.audience is not None else client_id,
            "iat": iat,
            "exp": iat + faults.token_lifetime,
            "jti": str(uuid.uuid4()),
            "app_tid": self.app_tid,
            "sap_id_type": "app",
        }
        if faults.issuer is not None:
            claims["iss"] = faults.issuer
        if faults.cnf_thumbprint is not None or not settings.unbound_tokens:
            claims["cnf"] = {
                "x5t#S256": faults.cnf_thumbprint if faults.cnf_thumbprint is not None else thumb
            }
        return self._sign(
            claims,
            unknown_key=faults.sign_with_unknown_key,
            wrong_key_same_kid=faults.sign_with_wrong_key_same_kid,
        )

    def _sign(self, claims: dict, *, unknown_key: bool = False, wrong_key_same_kid: bool = False) -> str:
        key, kid = self.pki.signing_key, self.pki.kid
        if unknown_key:
            key = self._rogue()
            kid = key_id(key.public_key())
        elif wrong_key_same_kid:
            key = self._rogue()
        return jwt.encode(claims, key, kid)

    def _rogue(self):
        # Made on first use only: most runs never need it and an RSA key costs a tenth of a second.
        with self._rogue_lock:
            if self._rogue_key is None:
                self._rogue_key = new_signing_key()
            return self._rogue_key


def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise TokenError(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
    try:
        parsed = parse_qs(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise TokenError(400, "invalid_request", "The request body is not UTF-8") from exc
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise TokenError(400, "invalid_request", f"Parameters sent more than once: {', '.join(repeated)}")
    form = {name: values[0] for name, values in parsed.items()}
    if not form.get("grant_type"):
        raise TokenError(400, "invalid_request", "The grant_type parameter is missing")
    if form["grant_type"] not in (CLIENT_CREDENTIALS, AUTHORIZATION_CODE):
        raise TokenError(400, "unsupported_grant_type", f"Unsupported grant type {form['grant_type']!r}")
    if form["grant_type"] == CLIENT_CREDENTIALS and not form.get("client_id"):
        raise TokenError(400, "invalid_request", "The client_id parameter is missing")
    return form


class Backend:
    """The tutorial's protected backend: /hello wants a valid token, /cert/hello also the bound cert."""

    def __init__(self, issuer: str, pki: Pki, faults: Callable[[], Faults]):
        self.issuer = issuer
        self._keys = {pki.kid: pki.signing_key.public_key()}
        self._faults = faults

    def __call__(self, request: Request) -> Response:
        status = self._faults().backend_status
        if status is not None:
            return Response.json(
                status, {"error": "injected", "error_description": f"backend_status {status}"}
            )
        if request.path not in ("/hello", "/cert/hello"):
            return Response.json(404, {"error": "not_found", "error_description": request.path})
        if request.method != "GET":
            return Response.json(405, {"error": "invalid_request", "error_description": "Use GET"})
        try:
            claims = self._validate(request)
            if request.path == "/cert/hello":
                _check_binding(request, claims)
        except jwt.InvalidToken as exc:
            return invalid_token(exc.reason)
        return Response.json(
            200, {"message": "Hello from the protected backend", "client_id": claims.get("sub")}
        )

    def _validate(self, request: Request) -> dict:
        claims = jwt.bearer_claims(request.headers.get("Authorization", ""), self._keys, self.issuer)
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise jwt.InvalidToken("token has no valid exp")
        if time.time() > exp + BACKEND_LEEWAY:
            raise jwt.InvalidToken("token expired")
        return claims


def _check_binding(request: Request, claims: dict) -> None:
    """RFC 8705 §3: the certificate of this connection must be the one the token was issued to."""
    if request.peer_cert is None:
        raise jwt.InvalidToken("client certificate required")
    cnf = claims.get("cnf")
    bound = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
    if bound != certificate_thumbprint(request.peer_cert):
        raise jwt.InvalidToken("certificate binding mismatch")


def with_faults(
    app: App,
    faults: Callable[[], Faults],
    wait: Callable[[float], object],
    latency: Callable[[], float] = lambda: 0.0,
) -> App:
    """Wrap ``app`` with the network's latency (seconds before every answer) and the faults common
    to both listeners: delay, close, redirect."""

    def guarded(request: Request) -> Response | None:
        if (seconds := latency()) > 0:
            wait(seconds)
        current = faults()
        seconds = current.delay.get(request.path)
        if seconds:
            wait(seconds)  # interruptible, so stop() need not wait for a long delay
        if request.path in current.close:
            return None
        location = current.redirect.get(request.path)
        if location is not None:
            return Response(302, b"", {"Location": location})
        return app(request)

    return guarded


def _json_bytes(data) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode("utf-8")
