"""OpenID Connect login: authorization code with PKCE (S256), the login page, userinfo and logout.

The authorization endpoint, its HTML login form and the code redemption at the token endpoint,
as a browser and a confidential client (client_secret_basic, client_secret_post, or its client
certificate: tls_client_auth, checked by the tenant) meet them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

from . import jwt
from .accounts import Accounts, OidcClient, User, check_secret
from .errors import TokenError, invalid_token
from .pki import b64url
from .tenant import reference_token
from .tlsserver import Request, Response

if TYPE_CHECKING:
    from .app import Faults
    from .tenant import TenantSettings

AUTHORIZE_PATH = "/oauth2/authorize"
USERINFO_PATH = "/oauth2/userinfo"
LOGOUT_PATH = "/oauth2/logout"
CODE_LIFETIME = 60  # seconds an authorization code may wait for its redemption
SCOPES = ("openid", "email", "profile", "groups")
# The OAuth parameters the login form carries along in hidden fields.
CARRIED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)
_PKCE = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.1 (verifier) and §4.2 (S256 challenge)
INVALID_CREDENTIALS = "Invalid credentials"

# No script, no external resource; inline style only. No form-action: Chromium would apply it to
# the redirect back to the client after the form is posted.
_PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_STYLE = (
    "body{font-family:sans-serif;background:#f5f6f7;margin:0}"
    "main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:.5rem}"
    "label,input,button{display:block;width:100%;box-sizing:border-box}"
    "input{margin:.25rem 0 1rem;padding:.5rem}button{padding:.6rem}"
    ".error{color:#b00}"
)

Signer = Callable[..., str]  # (claims, *, unknown_key=False, wrong_key_same_kid=False) -> JWT


@dataclass(frozen=True)
class Grant:
    """What an authorization code stands for until it is redeemed."""

    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str
    user_id: str
    scope: str
    sid: str
    auth_time: int
    expires: float


class Codes:
    """Authorization codes: random, single use, CODE_LIFETIME seconds."""

    def __init__(self):
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}

    def issue(self, grant: Grant) -> str:
        code = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            self._grants = {c: g for c, g in self._grants.items() if g.expires > now}
            self._grants[code] = grant
        return code

    def take(self, code: str) -> Grant | None:
        """The grant of ``code``, which is spent by asking, whatever comes next."""
        with self._lock:
            return self._grants.pop(code, None)

    def clear(self) -> None:
        with self._lock:
            self._grants.clear()


class _PageError(Exception):
    """An error that must not go back to the redirect URI: shown to the user instead."""


class _RedirectError(Exception):
    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error, self.description = error, description


class Oidc:
    """The OIDC part of the tenant at ``url``."""

    def __init__(
        self,
        url: str,
        accounts: Accounts,
        codes: Codes,
        sign: Signer,
        keys: dict,
        app_tid: str,
    ):
        self.url, self.accounts, self.codes, self.app_tid = url, accounts, codes, app_tid
        self._sign, self._keys = sign, keys

    def routes(self) -> dict:
        return {
            AUTHORIZE_PATH: (("GET", "POST"), self.authorize),
            USERINFO_PATH: (("GET",), self.userinfo),
            LOGOUT_PATH: (("GET",), self.logout),
        }

    # --- the authorization endpoint and its login page --------------------------------------------

    def authorize(self, request: Request) -> Response:
        try:
            params = self._authorize_params(request)
            client, redirect_uri = self._client_and_redirect(params)
        except _PageError as exc:
            return _page(400, "Error", f'<p class="error" role="alert">{html.escape(str(exc))}</p>')
        state = params.get("state", [None])[0]
        try:
            carried = self._validate(params)
            if request.method == "GET":
                return _login_form(carried)
            user = self._check_credentials(params)
            if user is None:
                username = params.get("username", [""])[0]
                return _login_form(carried, username=username, error=INVALID_CREDENTIALS)
        except _RedirectError as exc:
            return _redirect(
                redirect_uri, {"error": exc.error, "error_description": exc.description, "state": state}
            )
        now = time.time()
        grant = Grant(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            nonce=carried.get("nonce") or None,
            challenge=carried["code_challenge"],
            user_id=user.id,
            scope=_granted_scope(carried.get("scope", "")),
            sid=str(uuid.uuid4()),
            auth_time=int(now),
            expires=now + CODE_LIFETIME,
        )
        return _redirect(redirect_uri, {"code": self.codes.issue(grant), "state": state})

    @staticmethod
    def _authorize_params(request: Request) -> dict[str, list[str]]:
        if request.method == "POST":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type != "application/x-www-form-urlencoded":
                raise _PageError("The login form must be posted as application/x-www-form-urlencoded")
            text = request.body
        else:
            text = request.query.encode("latin-1", "replace")
        try:
            return parse_qs(text.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError as exc:
            raise _PageError("The request is not UTF-8") from exc

    def _client_and_redirect(self, params: dict[str, list[str]]) -> tuple[OidcClient, str]:
        # RFC 6749 §4.1.2.1: with an unknown client or redirect URI, tell the user, never redirect.
        client_ids, redirect_uris = params.get("client_id", []), params.get("redirect_uri", [])
        if len(client_ids) != 1 or not client_ids[0]:
            raise _PageError("The request names no client (client_id), or more than one")
        client = self.accounts.client(client_ids[0])
        if client is None:
            raise _PageError(f"Unknown client {client_ids[0]!r}")
        if len(redirect_uris) != 1 or not redirect_uris[0]:
            raise _PageError("The request has no redirect_uri, or more than one")
        if redirect_uris[0] not in client.redirect_uris:
            raise _PageError(f"The redirect_uri {redirect_uris[0]!r} is not registered for this client")
        return client, redirect_uris[0]

    @staticmethod
    def _validate(params: dict[str, list[str]]) -> dict[str, str]:
        repeated = sorted(name for name, values in params.items() if len(values) > 1)
        if repeated:
            raise _RedirectError("invalid_request", f"Parameters sent more than once: {', '.join(repeated)}")
        single = {name: values[0] for name, values in params.items()}
        response_type = single.get("response_type")
        if not response_type:
            raise _RedirectError("invalid_request", "The response_type parameter is missing")
        if response_type != "code":
            raise _RedirectError("unsupported_response_type", f"Unsupported response_type {response_type!r}")
        if "openid" not in single.get("scope", "").split():
            raise _RedirectError("invalid_scope", "The scope must include openid")
        if "none" in single.get("prompt", "").split():
            raise _RedirectError("login_required", "The stand-in keeps no sessions; the user must log on")
        challenge, method = single.get("code_challenge"), single.get("code_challenge_method")
        if not challenge:
            raise _RedirectError(
                "invalid_request", "PKCE is required: the code_challenge parameter is missing"
            )
        if method != "S256":
            raise _RedirectError("invalid_request", "The code_challenge_method must be S256")
        if len(challenge) != 43 or not _PKCE.fullmatch(challenge):
            raise _RedirectError("invalid_request", "The code_challenge is not a base64url SHA-256 digest")
        return {name: single[name] for name in CARRIED if name in single}

    def _check_credentials(self, params: dict[str, list[str]]) -> User | None:
        username = params.get("username", [""])[0]
        password = params.get("password", [""])[0]
        user = self.accounts.user_by_name(username)
        if user is None or not password or not check_secret(password, user.password_hash):
            return None
        return user

    # --- the token endpoint, grant_type=authorization_code ------------------------------------------

    def client_credentials(self, request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
        """The client id and secret sent with client_secret_basic or client_secret_post.

        Without any secret: the form's client id (None if it has none) and None for the secret, so
        the client must authenticate with its certificate (tls_client_auth).
        """
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            if "client_secret" in form:
                raise TokenError(400, "invalid_request", "Use one client authentication method, not two")
            try:
                raw_id, sep, raw_secret = (
                    base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                sep = ""
            if not sep or not raw_id:
                raise TokenError(401, "invalid_client", "Malformed Basic authorization", BASIC_CHALLENGE)
            # RFC 6749 §2.3.1 form-encodes both before Basic; many clients do not: take either.
            client_id = raw_id if self.accounts.client(raw_id) else unquote_plus(raw_id)
            secret = raw_secret
            client = self.accounts.client(client_id)
            if client and not check_secret(raw_secret, client.secret_hash):
                secret = unquote_plus(raw_secret)
            if form.get("client_id") not in (None, client_id):
                raise TokenError(
                    400, "invalid_request", "The client_id does not match the Basic authorization"
                )
            return client_id, secret
        if "client_secret" in form:
            if not form.get("client_id"):
                raise TokenError(400, "invalid_request", "The client_id parameter is missing")
            return form["client_id"], form["client_secret"]
        return form.get("client_id") or None, None

    def check_client(self, client_id: str, secret: str | None) -> None:
        """``client_id`` must be a registered OIDC client, and ``secret`` its secret.

        ``secret`` is None only when the tenant authenticated the client by its certificate already.
        """
        client = self.accounts.client(client_id)
        if secret is None:
            if client is None:
                raise TokenError(
                    401, "invalid_client", "The client id is not a registered OpenID Connect client"
                )
            return
        if client is not None and client.secret_hash is None:
            raise TokenError(
                401,
                "invalid_client",
                "A client secret was sent; this client must use its certificate",
                BASIC_CHALLENGE,
            )
        if client is None or not check_secret(secret, client.secret_hash):
            raise TokenError(401, "invalid_client", "Client authentication failed", BASIC_CHALLENGE)

    def exchange(
        self, form: dict[str, str], client_id: str, faults: Faults, settings: TenantSettings
    ) -> tuple[dict, str]:
        """The token response for an authorization code of the authenticated ``client_id``, and its
        access token (opaque as the token policy or token_format says; the ID token is a JWT)."""
        code = form.get("code")
        if not code:
            raise TokenError(400, "invalid_request", "The code parameter is missing")
        grant = self.codes.take(code)
        if grant is None:
            raise TokenError(400, "invalid_grant", "The authorization code is invalid or was used already")
        if time.time() >= grant.expires:
            raise TokenError(400, "invalid_grant", "The authorization code has expired")
        if grant.client_id != client_id:
            raise TokenError(400, "invalid_grant", "The authorization code was issued to another client")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise TokenError(
                400, "invalid_grant", "The redirect_uri does not match the authorization request"
            )
        verifier = form.get("code_verifier", "")
        if not _PKCE.fullmatch(verifier) or _s256(verifier) != grant.challenge:
            raise TokenError(400, "invalid_grant", "The code_verifier does not match the code_challenge")
        user = self.accounts.user_by_id(grant.user_id)
        if user is None:
            raise TokenError(400, "invalid_grant", "The user no longer exists")
        if settings.opaque(form.get("token_format")):
            access_token = reference_token()
        else:
            access_token = self._access_token(faults, settings, grant, user)
        body = {
            "access_token": access_token,
            "id_token": self._id_token(faults, settings, grant, user, access_token),
            "token_type": "Bearer",
            "expires_in": faults.token_lifetime,
            "scope": grant.scope,
        }
        return body, access_token

    def _access_token(self, faults: Faults, settings: TenantSettings, grant: Grant, user: User) -> str:
        iat = int(time.time())
        claims = {
            **settings.issuer_claims(self.url),
            "sub": user.id,
            "azp": grant.client_id,
            "aud": faults.audience if faults.audience is not None else grant.client_id,
            "iat": iat,
            "exp": iat + faults.token_lifetime,
            "jti": str(uuid.uuid4()),
            "app_tid": self.app_tid,
            "sap_id_type": "user",
            "user_uuid": user.id,
            "scope": grant.scope,
            "sid": grant.sid,
        }
        if faults.issuer is not None:
            claims["iss"] = faults.issuer
        return self._sign(
            claims,
            unknown_key=faults.sign_with_unknown_key,
            wrong_key_same_kid=faults.sign_with_wrong_key_same_kid,
        )

    def _id_token(
        self, faults: Faults, settings: TenantSettings, grant: Grant, user: User, access_token: str
    ) -> str:
        iat = int(time.time())
        # ias_iss only with a custom domain (SAP/cloud-security-client-go auth/token.go: its presence
        # is what marks one).
        claims = {
            **settings.issuer_claims(self.url),
            "sub": user.id,
            "aud": faults.id_token_audience if faults.id_token_audience is not None else grant.client_id,
            "azp": grant.client_id,
            "iat": iat,
            "exp": iat + faults.id_token_lifetime,
            "auth_time": grant.auth_time,
            "jti": str(uuid.uuid4()),
            "email": user.email,
            "given_name": user.given_name,
            "family_name": user.family_name,
            "groups": list(user.groups),  # IAS puts group names here
            "user_uuid": user.id,
            "app_tid": self.app_tid,
            "sid": grant.sid,
            "at_hash": b64url(hashlib.sha256(access_token.encode("ascii")).digest()[:16]),
        }
        if faults.id_token_issuer is not None:
            claims["iss"] = faults.id_token_issuer
        nonce = faults.id_token_nonce if faults.id_token_nonce is not None else grant.nonce
        if nonce is not None:
            claims["nonce"] = nonce
        return self._sign(claims, unknown_key=faults.id_token_sign_with_unknown_key)

    # --- userinfo and logout -------------------------------------------------------------------------

    def userinfo(self, request: Request) -> Response:
        try:
            claims = self._user_token(request)
            user = self.accounts.user_by_id(claims.get("sub"))
            if user is None:
                raise jwt.InvalidToken("unknown user")
        except jwt.InvalidToken as exc:
            return invalid_token(exc.reason)
        return Response.json(
            200,
            {
                "sub": user.id,
                "email": user.email,
                "given_name": user.given_name,
                "family_name": user.family_name,
                "name": f"{user.given_name} {user.family_name}".strip(),
                "groups": list(user.groups),
                "user_uuid": user.id,
            },
            {"Cache-Control": "no-store"},
        )

    def _user_token(self, request: Request) -> dict:
        claims = jwt.bearer_claims(request.headers.get("Authorization", ""), self._keys, self.url)
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool) or time.time() >= exp:
            raise jwt.InvalidToken("token expired")
        if claims.get("sap_id_type") != "user":
            raise jwt.InvalidToken("not a user's token")
        return claims

    def logout(self, request: Request) -> Response:
        """RP-initiated logout: back to post_logout_redirect_uri only if the id_token_hint's client registered it."""
        params = {name: values[0] for name, values in parse_qs(request.query, keep_blank_values=True).items()}
        target, client = params.get("post_logout_redirect_uri"), None
        try:
            # Signed by this tenant, for this tenant; an expired hint still names its client.
            claims = jwt.decode(params.get("id_token_hint", ""), self._keys)
        except jwt.InvalidToken:
            claims = {}
        if jwt.issuer_of(claims) == self.url:
            aud = claims.get("aud")
            hinted = claims.get("azp") or (aud[0] if isinstance(aud, list) and aud else aud)
            if isinstance(hinted, str) and params.get("client_id") in (None, hinted):
                client = self.accounts.client(hinted)
        if target and client and target in client.post_logout_redirect_uris:
            return _redirect(target, {"state": params.get("state")})
        return _page(200, "Logged out", "<h1>You are logged out</h1>")


BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="iasstandin"'}


def _s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _granted_scope(requested: str) -> str:
    asked = requested.split()
    return " ".join(s for s in SCOPES if s in asked)


def _redirect(uri: str, params: dict[str, str | None]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if urlsplit(uri).query else ("" if uri.endswith("?") else "?")
    location = f"{uri}{separator}{query}" if query else uri
    return Response(302, b"", {"Location": location, "Cache-Control": "no-store"})


def _page(status: int, title: str, content: str) -> Response:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} - IAS stand-in</title><style>{_STYLE}</style></head>"
        f"<body><main>{content}</main></body></html>"
    )
    return Response(status, body.encode("utf-8"), dict(_PAGE_HEADERS))


def _login_form(params: dict[str, str], username: str = "", error: str | None = None) -> Response:
    e = lambda text: html.escape(text, quote=True)  # noqa: E731
    hidden = "".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in params.items())
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    content = (
        f"<h1>Log on</h1>{alert}"
        f'<form method="post" action="{AUTHORIZE_PATH}">{hidden}'
        '<label for="username">Email or user name</label>'
        f'<input id="username" name="username" type="text" autocomplete="username" value="{e(username)}" required>'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" required>'
        '<button type="submit">Log on</button></form>'
    )
    return _page(200, "Log on", content)
