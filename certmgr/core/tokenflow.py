"""The token-flow health check: what the tutorial's frontend does, step by step, with a diagnosis.

discovery → token (client credentials over mTLS, no secret) → token_validation (RS256 via the
tenant's JWKS, issuer, lifetime, audience, RFC 8705 certificate binding) → backend (Bearer).
``run_token_flow`` never raises: every failure becomes a step result in plain words. The access
token and the key live only in this call; neither is in a result, a log line or an exception.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

import jwt

from . import outbound
from .outbound import HttpPolicy, OutboundError, Response

log = logging.getLogger(__name__)

STEPS = ("discovery", "token", "token_validation", "backend")
# Claims worth keeping with a result. Never the token itself, nor its jti.
KEPT_CLAIMS = (
    "iss",
    "ias_iss",
    "aud",
    "sub",
    "azp",
    "exp",
    "iat",
    "app_tid",
    "zone_uuid",
    "sap_id_type",
    "cnf",
)
JWKS_MAX_AGE = 600.0
JWKS_CACHE_ENTRIES = 64  # JWKS per (URI, headers); the headers come from tokens, so the cache is bounded
ISSUER_MAX_LENGTH = 2048
UNBOUND = "the token is not bound to the certificate (no cnf claim)"
UNBOUND_NO_X5T = "the token is not bound to the certificate (its cnf claim has no x5t#S256)"


@dataclass(frozen=True)
class TokenFlowRequest:
    tenant_url: str
    client_id: str
    certificate_pem: bytes  # the client certificate first, then its chain
    key_der: bytes = field(repr=False)  # PKCS#8
    trusted_domains: tuple[str, ...] = ("accounts.ondemand.com", "accounts.cloud.sap")
    backend_url: str = ""
    backend_mtls: bool = False  # present the client certificate to the backend (its cert. route)
    app_tid: str = ""  # the binding's app_tid, sent with the token request when known


@dataclass(frozen=True)
class TokenFlowOptions:
    policy: HttpPolicy = HttpPolicy()
    clock_skew: int = 60  # seconds allowed between our clock and the tenant's
    now: Callable[[], float] = time.time


@dataclass(frozen=True)
class StepResult:
    name: str
    ok: bool | None  # None: not run (after a failure) or skipped
    code: str
    diagnosis: str
    duration_ms: float | None = None
    status: int | None = None
    warnings: tuple[str, ...] = ()  # what a person should know although the step passed

    def to_dict(self) -> dict:
        duration = None if self.duration_ms is None else round(self.duration_ms, 1)
        return {
            "name": self.name,
            "ok": self.ok,
            "duration_ms": duration,
            "status": self.status,
            "diagnosis": self.diagnosis,
            "code": self.code,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class TokenFlowResult:
    steps: tuple[StepResult, ...]
    claims: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        validation = self.step("token_validation")
        return (
            all(step.ok is not False for step in self.steps)
            and validation is not None
            and validation.ok is True
        )

    @property
    def failed_step(self) -> StepResult | None:
        return next((step for step in self.steps if step.ok is False), None)

    def step(self, name: str) -> StepResult | None:
        return next((step for step in self.steps if step.name == name), None)


class StepFailed(Exception):
    def __init__(self, code: str, diagnosis: str, status: int | None = None):
        super().__init__(diagnosis)
        self.code, self.diagnosis, self.status = code, diagnosis, status


def thumbprint(certificate_der: bytes) -> str:
    """RFC 8705 §3.1: base64url (no padding) of the SHA-256 of the certificate's DER."""
    return base64.urlsafe_b64encode(hashlib.sha256(certificate_der).digest()).rstrip(b"=").decode("ascii")


def first_certificate_der(pem: bytes) -> bytes:
    text = pem.decode("ascii", "replace")
    begin = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----", begin) + len("-----END CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(text[begin:end])


def run_token_flow(request: TokenFlowRequest, options: TokenFlowOptions | None = None) -> TokenFlowResult:
    flow = TokenFlow(request, options)
    for _ in flow:
        pass
    return flow.result


class TokenFlow:
    """Iterate to run the steps one by one (a page can show each as it completes); then ``result``."""

    def __init__(self, request: TokenFlowRequest, options: TokenFlowOptions | None = None):
        self.request, self.options = request, options or TokenFlowOptions()
        self.policy = self.options.policy
        self.results: list[StepResult] = []
        self.claims: dict = {}
        self.discovery: dict = {}
        self._token: str | None = None
        self._client_pool = None

    @property
    def result(self) -> TokenFlowResult:
        return TokenFlowResult(tuple(self.results), dict(self.claims))

    def __iter__(self) -> Iterator[StepResult]:
        steps = {
            "discovery": self.discover,
            "token": self.get_token,
            "token_validation": self.validate_token,
            "backend": self.call_backend,
        }
        try:
            failed = False
            for name, action in steps.items():
                result = StepResult(name, None, "not_run", "not run") if failed else self.timed(name, action)
                failed = failed or result.ok is False
                self.results.append(result)
                yield result
        finally:
            self.close()

    def timed(self, name: str, action) -> StepResult:
        """Runs a step: ``action`` returns (ok, code, diagnosis, status[, warnings]) or raises."""
        started, warnings = time.perf_counter(), ()
        try:
            ok, code, diagnosis, status, *more = action()
            warnings = tuple(more[0]) if more else ()
        except (StepFailed, OutboundError) as failure:
            ok, code, diagnosis, status = False, failure.code, failure.diagnosis, failure.status
        except Exception as exc:  # noqa: BLE001 - the check must report, never raise into its caller
            log.warning("health check step %s failed unexpectedly: %s", name, exc.__class__.__name__)
            ok, code, diagnosis, status = (
                False,
                "unexpected_error",
                f"Unexpected {exc.__class__.__name__}.",
                None,
            )
        took = (time.perf_counter() - started) * 1000
        return StepResult(name, ok, code, diagnosis, took, status, warnings)

    def close(self) -> None:
        self._token = None
        if self._client_pool is not None:
            self._client_pool.clear()

    # -- the steps: each returns (ok, code, diagnosis, http status) or raises StepFailed --

    def discover(self):
        url = self.request.tenant_url.rstrip("/") + "/.well-known/openid-configuration"
        response = outbound.request(shared_pool(self.policy), "GET", url, self.policy, tenant=True)
        if response.status != 200:
            raise StepFailed(
                "unexpected_response",
                f"Discovery answered {response.status}, not 200 with the OpenID configuration.",
                response.status,
            )
        document = _json_object(response, "The OpenID configuration")
        for key in ("token_endpoint", "jwks_uri"):
            if not isinstance(document.get(key), str):
                raise StepFailed(
                    "unexpected_response", f"The OpenID configuration has no {key}.", response.status
                )
            # The token request carries our certificate: only to an allowed tenant host.
            outbound.check_url(document[key], self.policy, tenant=True)
        self.discovery = document
        return True, "ok", f"Token endpoint {document['token_endpoint']}.", response.status

    def get_token(self):
        self._client_pool = outbound.pool(
            outbound.client_context(self.policy, self.request.certificate_pem, self.request.key_der), 1
        )
        # token_format=jwt: a JWT even when the application's token policy is opaque (SAP-docs, token
        # endpoint for client credentials); app_tid names the tenant where the binding knows it.
        form = {
            "grant_type": "client_credentials",
            "client_id": self.request.client_id,
            "token_format": "jwt",
        }
        if self.request.app_tid:
            form["app_tid"] = self.request.app_tid
        body = urlencode(form)
        response = outbound.request(
            self._client_pool,
            "POST",
            self.discovery["token_endpoint"],
            self.policy,
            tenant=True,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            body=body.encode("ascii"),
        )
        if response.status != 200:
            raise StepFailed(*self._token_error(response), response.status)
        document = _json_object(response, "The token response")
        token = document.get("access_token")
        if not isinstance(token, str) or str(document.get("token_type", "")).lower() != "bearer":
            raise StepFailed("unexpected_response", "The token response holds no Bearer access_token.", 200)
        self._token = token
        lifetime = document.get("expires_in")
        return True, "ok", f"IAS issued a Bearer token (expires_in {lifetime} s).", 200

    def _token_error(self, response: Response) -> tuple[str, str]:
        try:
            document = json.loads(response.body)
        except ValueError:
            document = None
        if not isinstance(document, dict) or not isinstance(document.get("error"), str):
            what = "a server error" if response.status >= 500 else "no OAuth error"
            return "unexpected_response", f"The token endpoint answered {response.status} with {what}."
        error = _printable(document["error"], 60)
        said = _printable(str(document.get("error_description", "")), 300)
        said = f" IAS said: “{said}”" if said else ""
        if error == "invalid_client" and "lock" in said.lower():
            return "client_locked", (
                f"The client id {self.request.client_id} is locked after failed logins (IAS locks it "
                f"for 60 minutes after 5 failures).{said}"
            )
        if error == "invalid_client":
            return "invalid_client", (
                "IAS refused the client (invalid_client): the certificate is not registered for client id "
                f"{self.request.client_id}, or it has expired.{said}"
            )
        return error if error in {"invalid_request", "unauthorized_client"} else "token_error", (
            f"The token endpoint answered {response.status} {error}.{said}"
        )

    def validate_token(self):
        if self._token.count(".") != 2:
            raise StepFailed(
                "malformed_token",
                "The access token is not a JWT but an opaque reference, although the request asked for "
                "token_format=jwt.",
            )
        request, jwks_uri = self.request, self.discovery["jwks_uri"]
        claims = verify_rs256(
            self._token, jwks_uri, self.policy, "access token", request.client_id, request.app_tid
        )
        # Claims are kept (to explain a result) only once the tenant's signature vouches for them.
        self.claims = {key: claims[key] for key in KEPT_CLAIMS if key in claims}
        trusted_issuer(claims, request.trusted_domains, request.tenant_url)
        self._check_lifetime_and_audience(claims)
        unbound = self._unbound(claims)
        if unbound:
            return True, "ok", "Signature, issuer, lifetime and audience verified.", None, (unbound,)
        return True, "ok", "Signature, issuer, lifetime, audience and certificate binding verified.", None

    def _check_lifetime_and_audience(self, claims: dict) -> None:
        now, skew = self.options.now(), self.options.clock_skew
        expires, issued = claims.get("exp"), claims.get("iat")
        if not isinstance(expires, int | float) or expires + skew < now:
            raise StepFailed("expired_token", f"The token expired at {_utc(expires)} (now {_utc(now)}).")
        if isinstance(issued, int | float) and issued - skew > now:
            raise StepFailed("token_not_yet_valid", f"The token is issued in the future ({_utc(issued)}).")
        audience = claims.get("aud")
        audiences = (
            [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
        )
        if self.request.client_id not in audiences:
            raise StepFailed(
                "wrong_audience",
                f"The token's audience {audience!r} does not contain the client id {self.request.client_id}.",
            )

    def _unbound(self, claims: dict) -> str:
        """The warning for a token bound to no certificate; "" when it is bound to ours (RFC 8705).

        SAP's libraries check cnf only when asked to (Java: JwtX5tValidator is not among the
        default validators): a token without one is valid, a cnf naming another certificate is not.
        """
        cnf = claims.get("cnf")
        if cnf is None:
            return UNBOUND
        if not isinstance(cnf, dict):
            raise StepFailed("binding_mismatch", "The token's cnf claim is not a JSON object (RFC 8705).")
        if "x5t#S256" not in cnf:
            return UNBOUND_NO_X5T
        expected = thumbprint(first_certificate_der(self.request.certificate_pem))
        if cnf["x5t#S256"] != expected:
            raise StepFailed(
                "binding_mismatch",
                f"The token is bound to certificate thumbprint {_printable(repr(cnf['x5t#S256']), 100)}, "
                f"not to ours ({expected}) (RFC 8705 cnf.x5t#S256).",
            )
        return ""

    def call_backend(self):
        url = self.request.backend_url
        if not url:
            return None, "skipped", "No backend URL configured: the token was not tried on a backend.", None
        pool = self._client_pool if self.request.backend_mtls else shared_pool(self.policy)
        response = outbound.request(
            pool, "GET", url, self.policy, tenant=False, headers={"Authorization": f"Bearer {self._token}"}
        )
        status = response.status
        if 200 <= status < 300:
            return True, "ok", f"The backend accepted the token ({status}).", status
        said = _printable(response.headers.get("WWW-Authenticate", ""), 200)
        said = f" It said: {said}" if said else ""
        if status == 401:
            raise StepFailed("backend_401", f"The backend refused the token (401).{said}", status)
        if status == 403:
            raise StepFailed(
                "backend_403", f"The backend accepted the token but denied access (403).{said}", status
            )
        if status >= 500:
            raise StepFailed("backend_5xx", f"The backend failed with a server error ({status}).", status)
        raise StepFailed("unexpected_response", f"The backend answered {status}.", status)


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
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise StepFailed("malformed_token", f"The {what} is not a well-formed JWT.") from None
    if header.get("alg") != "RS256":
        raise StepFailed("bad_signature", f"The {what} is signed with {header.get('alg')!r}, not RS256.")
    headers = jwks_headers(claims, client_id, app_tid)
    key = jwks_key(jwks_uri, str(header.get("kid", "")), policy, headers)
    try:
        jwt.decode(token, key, algorithms=["RS256"], options={"verify_aud": False, "verify_exp": False,
                   "verify_iat": False, "verify_nbf": False, "verify_iss": False})  # fmt: skip
    except jwt.InvalidSignatureError:
        raise StepFailed(
            "bad_signature", f"The {what}'s signature does not verify with the tenant's key."
        ) from None
    except jwt.PyJWTError as exc:
        raise StepFailed(
            "malformed_token", f"The {what} could not be verified ({exc.__class__.__name__})."
        ) from None
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


# -- shared state: pooled connections without a client certificate, and the JWKS cache --

_lock = threading.Lock()
_pools: dict[tuple, object] = {}
_jwks: dict[tuple, tuple[float, dict]] = {}


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


def forget_cached_state() -> None:
    """Drop pooled connections and cached JWKS (tests; a changed CA bundle)."""
    with _lock:
        for pool in _pools.values():
            pool.clear()
        _pools.clear()
        _jwks.clear()
