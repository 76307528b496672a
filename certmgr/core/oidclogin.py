"""Logging people in through IAS with OpenID Connect: the code exchange and the id_token checks.

Django-free (plain data in and out), like the token flow whose HTTP wrapper, connection pool and
JWKS cache it shares. The portal authenticates its own code exchange the way its ``identity``
binding says: with the binding's client secret, or, for the X509 credential types, with its
client certificate over mutual TLS (RFC 8705 tls_client_auth: client_id in the body, no secret).
"""

from __future__ import annotations

import json
import threading
import time
from base64 import b64encode
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives import serialization

from . import outbound
from .outbound import HttpPolicy, OutboundError
from .tokencheck import StepFailed, _printable, _utc, issuer_url, shared_pool, trusted_issuer, verify_rs256

CLOCK_SKEW = 60  # seconds of clock difference tolerated on exp / iat


class LoginError(Exception):
    """Why a login did not complete, in words for the person who tried (no token, no secret)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LoginClient:
    """The portal as an OpenID Connect client of one IAS tenant."""

    issuer: str  # the tenant URL, e.g. https://mytenant.accounts.ondemand.com
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_pem: bytes | None = None  # X509 credential types: certificate and key instead
    key_pem: bytes | None = field(default=None, repr=False)
    authorization_endpoint: str = ""
    end_session_endpoint: str = ""
    issuer_aliases: tuple[str, ...] = ()  # custom-domain issuers also accepted (clean_issuer_aliases)

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/oauth2/token"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/oauth2/certs"


def exchange_code(
    client: LoginClient, code: str, redirect_uri: str, code_verifier: str | None, policy: HttpPolicy
) -> dict:
    """The token response for an authorization code (RFC 6749 §4.1.3, PKCE RFC 7636)."""
    # token_format=jwt as in the health check: the access token's format does not matter to the
    # login, but every token request of the portal asks the same (SAP-docs, authorization code).
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "token_format": "jwt",
    }
    if code_verifier:
        form["code_verifier"] = code_verifier
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if client.client_secret:
        # RFC 6749 §2.3.1: both parts form-encoded before Basic.
        pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
        headers["Authorization"] = "Basic " + b64encode(pair.encode()).decode("ascii")
        pool = shared_pool(policy)
    else:
        form["client_id"] = client.client_id
        try:
            pool = outbound.pool(
                outbound.client_context(policy, client.certificate_pem or b"", _key_der(client)), 1
            )
        except OutboundError:
            raise LoginError(
                "bad_client_key",
                "The portal's own login certificate and key (identity binding, CERTMGR_OIDC_CLIENT_KEY) "
                "could not be loaded together: an administrator must check them.",
            ) from None
    try:
        response = outbound.request(
            pool,
            "POST",
            client.token_endpoint,
            policy,
            tenant=True,
            headers=headers,
            body=urlencode(form).encode("ascii"),
        )
    except OutboundError as exc:
        raise LoginError("token_request_failed", f"IAS could not be reached: {exc.diagnosis}") from None
    document = _json(response.body)
    if response.status != 200:
        error = _printable(str(document.get("error", "")), 60) if document else ""
        said = _printable(str(document.get("error_description", "")), 200) if document else ""
        if error == "invalid_client":
            how = "client secret" if client.client_secret else "client certificate"
            raise LoginError(
                "invalid_client",
                f"IAS refused the portal's own {how} (invalid_client). An administrator must check the "
                f"portal's identity binding.{' IAS said: “' + said + '”' if said else ''}",
            )
        if error == "invalid_grant":
            raise LoginError(
                "invalid_grant",
                "IAS did not accept the login's one-time code (it expired or was used already). "
                "Please log on again.",
            )
        raise LoginError(
            "token_error",
            f"IAS answered the code exchange with {response.status} {error or 'no OAuth error'}.",
        )
    if not document or not isinstance(document.get("id_token"), str):
        raise LoginError("unexpected_response", "IAS's token response holds no id_token.")
    return document


def verify_id_token(
    client: LoginClient, id_token: str, nonce: str, policy: HttpPolicy, now: float | None = None
) -> dict:
    """The id_token's claims once signature (RS256, tenant JWKS), iss, aud, azp, exp, iat and nonce hold."""
    now = time.time() if now is None else now
    try:
        claims = verify_rs256(id_token, client.jwks_uri, policy, "id_token", client.client_id)
        # The portal's tenant as iss, or as ias_iss behind a custom domain (schemeless issuers
        # normalised as for the health check); a configured alias; nothing else.
        trusted_issuer(claims, (), client.issuer, aliases=client.issuer_aliases, what="id_token")
    except StepFailed as exc:
        raise LoginError(exc.code, exc.diagnosis) from None
    except OutboundError as exc:
        raise LoginError(
            "jwks_unavailable", f"The tenant's signing keys could not be read: {exc.diagnosis}"
        ) from None
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if client.client_id not in audiences:
        raise LoginError(
            "wrong_audience",
            f"The id_token is meant for {audience!r}, not for the portal ({client.client_id}).",
        )
    if ("azp" in claims or len(audiences) > 1) and claims.get("azp") != client.client_id:
        raise LoginError(
            "wrong_audience", f"The id_token's authorized party is {claims.get('azp')!r}, not the portal."
        )
    expires, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expires, int | float) or expires + CLOCK_SKEW < now:
        raise LoginError("expired_token", f"The id_token expired at {_utc(expires)} (now {_utc(now)}).")
    if not isinstance(issued, int | float) or issued - CLOCK_SKEW > now:
        raise LoginError("token_not_yet_valid", f"The id_token is issued in the future ({_utc(issued)}).")
    if not nonce or claims.get("nonce") != nonce:
        raise LoginError("wrong_nonce", "The id_token does not answer this login (nonce mismatch).")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise LoginError("no_subject", "The id_token names no subject (sub).")
    return claims


def clean_issuer_aliases(values: list[str]) -> list[str]:
    """CERTMGR_OIDC_ISSUER_ALIASES checked: https URLs of a host only (a trailing "/" dropped);
    ValueError naming the first that is not."""
    cleaned = []
    for value in values:
        url = value.removesuffix("/")
        try:
            if not url.startswith("https://"):
                raise StepFailed("wrong_issuer", f"{value!r} is not an https URL.")
            cleaned.append(issuer_url(url, "The issuer alias"))
        except StepFailed as exc:
            raise ValueError(exc.diagnosis) from None
    return cleaned


def groups_of(claims: dict) -> list[str]:
    """IAS's ``groups`` claim as a list of names (a single group may come as a string)."""
    groups = claims.get("groups")
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list):
        return []
    return sorted({g.strip() for g in groups if isinstance(g, str) and g.strip()})


_keys_lock = threading.Lock()
_keys: dict[bytes, bytes] = {}


def _key_der(client: LoginClient) -> bytes:
    """The client key as PKCS#8 DER (what outbound.client_context loads), parsed once."""
    pem = client.key_pem or b""
    with _keys_lock:
        if pem not in _keys:
            try:
                key = serialization.load_pem_private_key(pem, None)
            except (TypeError, ValueError):
                raise LoginError(
                    "bad_client_key", "The portal's own client key (identity binding) could not be read."
                ) from None
            _keys[pem] = key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        return _keys[pem]


def _json(body: bytes) -> dict | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
