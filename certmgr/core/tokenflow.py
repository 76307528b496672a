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
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

from . import outbound
from .outbound import HttpPolicy, OutboundError, Response
from .tokencheck import (
    StepFailed,
    _json_object,
    _printable,
    _utc,
    cached_discovery,
    client_context,
    drop_discovery,
    forget_cached_state,
    keep_discovery,
    shared_pool,
    trusted_issuer,
    verify_rs256,
)

__all__ = ["STEPS", "StepFailed", "StepResult", "TokenFlow", "TokenFlowOptions", "TokenFlowRequest",
           "TokenFlowResult", "forget_cached_state", "run_token_flow", "thumbprint"]  # fmt: skip

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
        self._discovery_cached = False  # the document came from the cache (not fetched by this flow)
        self._token: str | None = None
        self._client_pool: outbound.Pool | None = None

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
        """The tenant's OpenID configuration: cached per tenant URL and CA bundle for
        DISCOVERY_MAX_AGE (like the JWKS), fetched again when the token call or the JWKS lookup
        fails with a cached one (``_rediscover``)."""
        url = self._discovery_url()
        outbound.check_url(url, self.policy, tenant=True)
        cached = cached_discovery(url, self.policy)
        if cached is not None:
            document, age = cached
            self._use_discovery(document)  # checked against this flow's policy, as a fetched one
            self._discovery_cached = True
            return (
                True,
                "ok",
                f"Token endpoint {document['token_endpoint']} (OpenID configuration fetched {age:.0f} s ago).",
                None,
            )
        document, status = self._fetch_discovery(url)
        return True, "ok", f"Token endpoint {document['token_endpoint']}.", status

    def _discovery_url(self) -> str:
        return self.request.tenant_url.rstrip("/") + "/.well-known/openid-configuration"

    def _fetch_discovery(self, url: str) -> tuple[dict, int]:
        response = outbound.request(shared_pool(self.policy), "GET", url, self.policy, tenant=True)
        if response.status != 200:
            raise StepFailed(
                "unexpected_response",
                f"Discovery answered {response.status}, not 200 with the OpenID configuration.",
                response.status,
            )
        document = _json_object(response, "The OpenID configuration")
        self._use_discovery(document, response.status)
        self._discovery_cached = False
        keep_discovery(url, self.policy, document)
        return document, response.status

    def _use_discovery(self, document: dict, status: int | None = None) -> None:
        for key in ("token_endpoint", "jwks_uri"):
            if not isinstance(document.get(key), str):
                raise StepFailed("unexpected_response", f"The OpenID configuration has no {key}.", status)
            # The token request carries our certificate: only to an allowed tenant host.
            outbound.check_url(document[key], self.policy, tenant=True)
        self.discovery = document

    def _rediscover(self, key: str) -> bool:
        """After a failure with a cached OpenID configuration: fetch it again, once per flow.
        True if ``key`` (token_endpoint, jwks_uri) changed, so the failed call is worth repeating
        there; a repeat at the same endpoint would only add a failed login (IAS locks a client
        after 5). A failure of the fetch leaves the original failure to be reported."""
        if not self._discovery_cached:
            return False
        self._discovery_cached = False
        url, before = self._discovery_url(), self.discovery.get(key)
        drop_discovery(url, self.policy)
        try:
            self._fetch_discovery(url)
        except (StepFailed, OutboundError) as failure:
            log.info("fetching the OpenID configuration again failed: %s", failure.code)
            return False
        return self.discovery.get(key) != before

    def get_token(self):
        self._client_pool = client_pool = outbound.pool(
            client_context(self.policy, self.request.certificate_pem, self.request.key_der), 1
        )
        try:
            response = self._request_token(client_pool)
        except OutboundError:
            if not self._rediscover("token_endpoint"):
                raise
            response = self._request_token(client_pool)
        else:
            if response.status != 200 and self._rediscover("token_endpoint"):
                response = self._request_token(client_pool)
        if response.status != 200:
            raise StepFailed(*self._token_error(response), response.status)
        document = _json_object(response, "The token response")
        token = document.get("access_token")
        if not isinstance(token, str) or str(document.get("token_type", "")).lower() != "bearer":
            raise StepFailed("unexpected_response", "The token response holds no Bearer access_token.", 200)
        self._token = token
        lifetime = document.get("expires_in")
        return True, "ok", f"IAS issued a Bearer token (expires_in {lifetime} s).", 200

    def _request_token(self, client_pool: outbound.Pool) -> Response:
        # token_format=jwt: a JWT even when the application's token policy is opaque (SAP-docs, token
        # endpoint for client credentials); app_tid names the tenant where the binding knows it.
        form = {
            "grant_type": "client_credentials",
            "client_id": self.request.client_id,
            "token_format": "jwt",
        }
        if self.request.app_tid:
            form["app_tid"] = self.request.app_tid
        return outbound.request(
            client_pool,
            "POST",
            self.discovery["token_endpoint"],
            self.policy,
            tenant=True,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            body=urlencode(form).encode("ascii"),
        )

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
        token = self._token or ""  # set by the token step, which ran and passed
        if token.count(".") != 2:
            raise StepFailed(
                "malformed_token",
                "The access token is not a JWT but an opaque reference, although the request asked for "
                "token_format=jwt.",
            )
        request = self.request

        def verified() -> dict:
            jwks_uri = self.discovery["jwks_uri"]
            return verify_rs256(
                token, jwks_uri, self.policy, "access token", request.client_id, request.app_tid
            )

        try:
            claims = verified()
        except (StepFailed, OutboundError) as failure:
            # The JWKS lacks the token's key or could not be read: with a cached OpenID configuration,
            # the tenant may have moved its JWKS since; fetch that again and, if it moved, look there.
            missed = isinstance(failure, OutboundError) or failure.code in {
                "unknown_kid",
                "unexpected_response",
            }
            if not (missed and self._rediscover("jwks_uri")):
                raise
            claims = verified()  # at the JWKS the document names now
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
        pool = (
            self._client_pool if self.request.backend_mtls and self._client_pool else shared_pool(self.policy)
        )
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
