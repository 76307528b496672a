"""Checking an IAS token as SAP's libraries do: the RS256 signature with a key of the tenant's
JWKS (cached per tenant and client), and the issuer rule. The health check's token flow and the
login's id_token check share both; ``StepFailed`` names what is wrong with a stable code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import ssl
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import jwt
from jwt.algorithms import RSAAlgorithm

from . import outbound
from .outbound import HttpPolicy, Response

JWKS_MAX_AGE = 600.0
# JWKS per (URI, headers): per tenant and client, as SAP's libraries key it (a fleet of a thousand
# applications on one tenant fits); bounded, as the headers come from tokens not verified yet.
JWKS_CACHE_ENTRIES = 1024
ISSUER_MAX_LENGTH = 2048


class StepFailed(Exception):
    def __init__(self, code: str, diagnosis: str, status: int | None = None):
        super().__init__(diagnosis)
        self.code, self.diagnosis, self.status = code, diagnosis, status


def trusted_issuer(
    claims: dict,
    trusted_domains: Iterable[str],
    tenant_url: str,
    *,
    aliases: Iterable[str] = (),
    what: str = "token",
) -> str:
    r"""The token's issuer, normalised, once it passes the rule of SAP's libraries; StepFailed otherwise.

    The issuer is ``ias_iss`` when present (custom domains: ``iss`` is then the custom domain), else
    ``iss``; one without a scheme gets ``https://`` (a tenant may issue it so). Its host must be
    exactly one DNS label under a trusted domain (``^[A-Za-z0-9-]{1,63}\.<domain>$``, as Java's
    JwtIssuerValidator, Go's matchesDomain and Python sap-xssec), or the tenant URL's own host and
    port (loopback and development tenants), or one of ``aliases`` (the login's configured custom
    issuers). Like SAP's libraries, no port, path (not even "/"), query, fragment, userinfo, "%" or
    whitespace and control characters. Both the health check and the login use this one rule.
    """
    claim = "ias_iss" if claims.get("ias_iss") else "iss"
    url = issuer_url(claims.get(claim), f"The {what}'s issuer ({claim})")
    remainder = url.removeprefix("https://")
    domains = [d.strip().lower() for d in trusted_domains if isinstance(d, str) and d.strip()]
    tenant = urlsplit(tenant_url).netloc.lower()
    if remainder.lower() == tenant or url.lower() in {a.lower() for a in aliases}:
        return url
    for domain in domains:
        if re.fullmatch(rf"[A-Za-z0-9-]{{1,63}}\.{re.escape(domain)}", remainder, re.IGNORECASE | re.ASCII):
            return url
    allowed = [f"one label under {', '.join(domains)}"] if domains else []
    allowed += [f"the tenant's own host {tenant}", *(f"the configured issuer {a}" for a in aliases)]
    raise StepFailed(
        "wrong_issuer",
        f"The {what} was issued by {_shown(url)} ({claim}), which is not {' or '.join(allowed)}.",
    )


def issuer_url(raw: object, said: str) -> str:
    """``raw`` as an https issuer URL of scheme and host[:port] only; StepFailed(wrong_issuer) saying why."""
    if not isinstance(raw, str) or not raw:
        raise StepFailed("wrong_issuer", f"{said} is missing or not a string.")
    problem = _issuer_problem(raw)
    if problem:
        raise StepFailed("wrong_issuer", f"{said} {_shown(raw)} {problem}.")
    return raw if raw.startswith("https://") else "https://" + raw


def _issuer_problem(raw: str) -> str:
    if len(raw) > ISSUER_MAX_LENGTH:
        return f"is longer than {ISSUER_MAX_LENGTH} characters"
    if any(ch.isspace() or not ch.isprintable() for ch in raw):
        return "contains whitespace or control characters"
    if "%" in raw:
        return "contains %-encoding"
    # SAP's pattern is ASCII; and ignoring case, the Kelvin sign matches "k" and "ſ" matches "s".
    if not raw.isascii():
        return "contains non-ASCII characters (a host name is ASCII, IDNs in punycode)"
    if "://" in raw and not raw.startswith("https://"):
        return "is not an https URL"
    remainder = raw.removeprefix("https://")
    for mark, name in (("/", "a path"), ("?", "a query"), ("#", "a fragment"), ("@", "userinfo")):
        if mark in remainder:
            return f"has {name} (SAP's libraries accept only https://<host>)"
    if "\\" in remainder or not remainder:
        return "is not a host name"
    return ""


def _shown(text: str) -> str:
    return repr(text[:200] + ("…" if len(text) > 200 else ""))


_JWS = jwt.PyJWS()
_RS256 = RSAAlgorithm(RSAAlgorithm.SHA256)


def jwks_headers(claims: dict, client_id: str, app_tid: str = "") -> dict[str, str]:
    """What SAP's libraries send to IAS's JWKS endpoint, where known: x-app_tid (the token's
    app_tid or zone_uuid), x-client_id (ours), x-azp (the token's azp). Values that could not be a
    header value safely (they come from a token not verified yet) are left out."""
    values = {
        "x-app_tid": claims.get("app_tid") or claims.get("zone_uuid") or app_tid,
        "x-client_id": client_id,
        "x-azp": claims.get("azp"),
    }
    return {
        name: value
        for name, value in values.items()
        if isinstance(value, str) and 0 < len(value) <= 256 and value.isascii() and value.isprintable()
    }


def verify_rs256(
    token: str, jwks_uri: str, policy: HttpPolicy, what: str, client_id: str = "", app_tid: str = ""
) -> dict:
    """The claims of a JWT once its RS256 signature verifies with a key of the tenant's JWKS.

    Only the signature: the caller checks the claims. StepFailed (malformed_token, bad_signature,
    unknown_kid) otherwise; ``what`` names the token in the diagnosis. ``client_id`` and
    ``app_tid`` go to the JWKS request as SAP's libraries send them (``jwks_headers``).
    """
    try:
        # One parse of the token (PyJWT's checks of its form), then the signature over its first two parts.
        parts = _JWS.decode_complete(token, options={"verify_signature": False})
        header, claims = parts["header"], json.loads(parts["payload"])
    except (jwt.PyJWTError, ValueError, RecursionError):
        raise StepFailed("malformed_token", f"The {what} is not a well-formed JWT.") from None
    if not isinstance(claims, dict):
        raise StepFailed("malformed_token", f"The {what} is not a well-formed JWT.")
    if header.get("alg") != "RS256":
        raise StepFailed("bad_signature", f"The {what} is signed with {header.get('alg')!r}, not RS256.")
    headers = jwks_headers(claims, client_id, app_tid)
    key = jwks_key(jwks_uri, str(header.get("kid", "")), policy, headers)
    signing_input = token.encode("utf-8").rsplit(b".", 1)[0]
    if not _RS256.verify(signing_input, key, parts["signature"]):
        raise StepFailed("bad_signature", f"The {what}'s signature does not verify with the tenant's key.")
    return claims


def _json_object(response: Response, what: str) -> dict:
    try:
        document = json.loads(response.body)
    except ValueError:
        raise StepFailed(
            "unexpected_response", f"{what} is not JSON (HTTP {response.status}).", response.status
        ) from None
    if not isinstance(document, dict):
        raise StepFailed("unexpected_response", f"{what} is not a JSON object.", response.status)
    return document


def _printable(text: str, limit: int) -> str:
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return cleaned[:limit] + ("…" if len(cleaned) > limit else "")


def _utc(timestamp) -> str:
    if not isinstance(timestamp, int | float):
        return "an unknown time"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- shared state: pooled connections without a client certificate, the JWKS and discovery caches,
# and the client certificates' TLS contexts --

DISCOVERY_MAX_AGE = 600.0  # as the JWKS; a failed token call or a JWKS miss fetches it again at once
DISCOVERY_CACHE_ENTRIES = 256  # tenants
CLIENT_CONTEXT_ENTRIES = 256  # certificate + key pairs; a context holds its key, so the cache is bounded
CLIENT_CONTEXT_MAX_AGE = 600.0  # seconds unused; then the context, and the key in it, is let go

_lock = threading.Lock()
_pools: dict[tuple, outbound.Pool] = {}
_jwks: dict[tuple, tuple[float, dict]] = {}
_discovery: dict[tuple, tuple[float, dict]] = {}
_client_contexts: dict[bytes, tuple[float, ssl.SSLContext]] = {}  # least recently used first
# Client contexts are found by an HMAC of everything they hold (CA bundle, certificate chain, key)
# under a key that lives and dies with this process: no two certificate/key pairs, of any tenant,
# share an entry, and the cache's keys reveal nothing about a private key.
_context_secret = secrets.token_bytes(32)


def shared_pool(policy: HttpPolicy):
    key = (policy.ca_bundle,)
    with _lock:
        if key not in _pools:
            _pools[key] = outbound.pool(outbound.server_context(policy), maxsize=16)
        return _pools[key]


def jwks_key(jwks_uri: str, kid: str, policy: HttpPolicy, headers: dict[str, str] | None = None):
    """The signing key for ``kid``; the JWKS is cached and fetched again when ``kid`` is unknown.

    Cached per JWKS URI and request headers, as SAP's libraries key it (Java: CacheKey(keyUri,
    params) in OAuth2TokenKeyServiceWithCache; Python: issuer, app_tid, azp, client_id): IAS may
    answer each tenant and client differently, so one's keys never stand in for another's.
    """
    headers = headers or {}
    cache_key = (jwks_uri, tuple(sorted(headers.items())))
    with _lock:
        fetched_at, keys = _jwks.get(cache_key, (0.0, {}))
    if kid in keys and time.monotonic() - fetched_at < JWKS_MAX_AGE:
        return keys[kid]
    keys = _fetch_jwks(jwks_uri, policy, headers)
    with _lock:
        _jwks.pop(cache_key, None)
        while len(_jwks) >= JWKS_CACHE_ENTRIES:
            _jwks.pop(next(iter(_jwks)))  # the oldest
        _jwks[cache_key] = (time.monotonic(), keys)
    if kid not in keys:
        raise StepFailed(
            "unknown_kid",
            f"The token is signed with key id {kid!r}, which the tenant's JWKS does not publish.",
        )
    return keys[kid]


def _fetch_jwks(jwks_uri: str, policy: HttpPolicy, headers: dict[str, str]) -> dict:
    response = outbound.request(
        shared_pool(policy),
        "GET",
        jwks_uri,
        policy,
        tenant=True,
        headers={**headers, "Accept": "application/json"},
    )
    if response.status != 200:
        raise StepFailed(
            "unexpected_response", f"The JWKS endpoint answered {response.status}, not 200.", response.status
        )
    document = _json_object(response, "The JWKS")
    keys = {}
    for entry in document.get("keys") or []:
        if isinstance(entry, dict) and entry.get("kty") == "RSA" and entry.get("kid"):
            try:
                keys[str(entry["kid"])] = jwt.PyJWK(entry, algorithm="RS256").key
            except jwt.PyJWTError:
                continue
    return keys


def cached_discovery(url: str, policy: HttpPolicy) -> tuple[dict, float] | None:
    """The OpenID configuration fetched from ``url`` less than DISCOVERY_MAX_AGE ago under the same
    CA bundle, and its age in seconds; None if there is none. The caller checks its URLs against
    its own policy again: the cache vouches only for what the tenant answered."""
    with _lock:
        fetched_at, document = _discovery.get((url, policy.ca_bundle), (0.0, None))
    age = time.monotonic() - fetched_at
    return (document, age) if document is not None and age < DISCOVERY_MAX_AGE else None


def keep_discovery(url: str, policy: HttpPolicy, document: dict) -> None:
    with _lock:
        _discovery.pop((url, policy.ca_bundle), None)
        while len(_discovery) >= DISCOVERY_CACHE_ENTRIES:
            _discovery.pop(next(iter(_discovery)))  # the oldest
        _discovery[(url, policy.ca_bundle)] = (time.monotonic(), document)


def drop_discovery(url: str, policy: HttpPolicy) -> None:
    with _lock:
        _discovery.pop((url, policy.ca_bundle), None)


def client_context(policy: HttpPolicy, certificate_pem: bytes, key_der: bytes) -> ssl.SSLContext:
    """outbound.client_context, built once per certificate chain, key and CA bundle (bounded, least
    recently used out first, and let go after CLIENT_CONTEXT_MAX_AGE unused: a context holds its
    private key in this process's memory). Each call still gets its own connections and its own
    TLS handshake: only the loading of CAs, certificate and key is saved. An SSLContext is safe to
    share between threads."""
    mac = hmac.new(_context_secret, digestmod=hashlib.sha256)
    for part in (str(policy.ca_bundle).encode(), certificate_pem, key_der):
        mac.update(len(part).to_bytes(8, "big"))
        mac.update(part)
    cache_key = mac.digest()
    with _lock:
        now = time.monotonic()
        _forget_unused_contexts(now)
        cached = _client_contexts.pop(cache_key, None)
        if cached is not None:
            _client_contexts[cache_key] = (now, cached[1])  # now the most recently used
            return cached[1]
    context = outbound.client_context(policy, certificate_pem, key_der)
    with _lock:
        while len(_client_contexts) >= CLIENT_CONTEXT_ENTRIES:
            _client_contexts.pop(next(iter(_client_contexts)))
        _client_contexts[cache_key] = (time.monotonic(), context)
    return context


def _forget_unused_contexts(now: float) -> None:
    """Under _lock: drop the contexts unused for CLIENT_CONTEXT_MAX_AGE (the oldest come first)."""
    while _client_contexts:
        oldest = next(iter(_client_contexts))
        if now - _client_contexts[oldest][0] < CLIENT_CONTEXT_MAX_AGE:
            return
        del _client_contexts[oldest]


def forget_cached_state() -> None:
    """Drop pooled connections, cached JWKS and discovery documents, and client TLS contexts
    (tests; a changed CA bundle)."""
    with _lock:
        for pool in _pools.values():
            pool.clear()
        _pools.clear()
        _jwks.clear()
        _discovery.clear()
        _client_contexts.clear()
