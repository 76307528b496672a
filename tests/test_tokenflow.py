"""The token-flow health check (certmgr.core.tokenflow) against the IAS stand-in over real TLS.

Every failure here is caused for real: the stand-in misbehaves on purpose (``ias.faults``), a
certificate is really unregistered or expired, a port really has nobody listening, a small TLS
server of the test really sends an alert. Thumbprints are computed here with hashlib, not with the
code under test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from certmgr.core import outbound, tokencheck, tokenflow
from certmgr.core.outbound import HttpPolicy
from certmgr.core.tokenflow import (
    STEPS,
    TokenFlow,
    TokenFlowOptions,
    TokenFlowRequest,
    forget_cached_state,
    run_token_flow,
    thumbprint,
)
from iasstandin import TokenRequest
from tests import certs

CLIENT = "3b8f2c6e-91d4-4a57-b0e3-7c5d2a9f1e40"
OTHER_CLIENT = "a0c4e1f7-2d8b-4f63-95ea-0b7d3c6f2e18"
WIDE_FROM = datetime(2020, 1, 1, tzinfo=UTC)  # the test's own TLS server: valid for OpenSSL's real clock
WIDE_UNTIL = datetime(2099, 1, 1, tzinfo=UTC)

pytestmark = pytest.mark.usefixtures("mid_life")


# --- certificates and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert():
    """The client certificate of these tests (its own key slot)."""
    return certs.issue("tokenflow-check (P000311)", key_slot=31, serial=0x3131)


@pytest.fixture(scope="module")
def stranger():
    """A certificate nobody registered."""
    return certs.issue("tokenflow-stranger (P000312)", key_slot=32, serial=0x3232)


@pytest.fixture
def registered(ias, cert):
    ias.register(CLIENT, cert.pem)
    yield cert
    ias.unregister(CLIENT)


def key_der(item: certs.Issued) -> bytes:
    return item.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def x5t_s256(der: bytes) -> str:
    """RFC 8705 §3.1, independently of the code under test."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


def b64url_json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def policy(ias=None, **changes) -> HttpPolicy:
    values = {
        "tenant_hosts": ("127.0.0.1",),
        "ca_bundle": str(ias.ca_file) if ias is not None else None,
        "connect_timeout": 1,
        "read_timeout": 1,
        "outbound_allow": ("127.0.0.1",),  # the stand-in's backend: a loopback address, allowed explicitly
    }
    return HttpPolicy(**{**values, **changes})


def flow_request(ias, item: certs.Issued, **changes) -> TokenFlowRequest:
    values = {
        "tenant_url": ias.url,
        "client_id": CLIENT,
        "certificate_pem": item.pem,
        "key_der": key_der(item),
        "trusted_domains": ("127.0.0.1",),
        "backend_url": ias.backend_url + "/hello",
    }
    return TokenFlowRequest(**{**values, **changes})


def run(ias, item: certs.Issued, *, policy_changes=None, options=None, **changes):
    options = options or TokenFlowOptions(policy=policy(ias, **(policy_changes or {})))
    return run_token_flow(flow_request(ias, item, **changes), options)


def assert_failed_at(result, name: str, code: str, *words: str):
    """``name`` failed with ``code`` and a diagnosis saying ``words``; earlier steps ok, later not run."""
    step = result.step(name)
    assert (step.ok, step.code) == (False, code), step
    for word in words:
        assert word.lower() in step.diagnosis.lower(), (word, step.diagnosis)
    position = STEPS.index(name)
    for earlier in STEPS[:position]:
        assert result.step(earlier).ok is True, result.step(earlier)
    for later in STEPS[position + 1 :]:
        skipped = result.step(later)
        assert (skipped.ok, skipped.code, skipped.diagnosis) == (None, "not_run", "not run"), skipped
        assert skipped.duration_ms is None and skipped.status is None
    assert result.failed_step == step
    assert result.ok is False
    return step


def wait_for(condition, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spy_requests(monkeypatch, path_end: str) -> list[str]:
    """The URLs of every request the check sends to a path ending so (a wrapper around
    outbound.request)."""
    fetched: list[str] = []
    real = outbound.request

    def spy(manager, method, url, *args, **kwargs):
        if url.endswith(path_end):
            fetched.append(url)
        return real(manager, method, url, *args, **kwargs)

    monkeypatch.setattr(outbound, "request", spy)
    return fetched


@pytest.fixture
def jwks_fetches(monkeypatch):
    """The URLs of every JWKS request the check sends."""
    return spy_requests(monkeypatch, "/oauth2/certs")


# --- a tiny TLS server of the test's own (Python's ssl), on 127.0.0.1 only ------------------------


@pytest.fixture(scope="module")
def tiny_pki(tmp_path_factory):
    """A CA of its own, a 'localhost' server certificate from it, and a bundle trusting it + the stand-in."""
    ca = certs.issue(
        "Tiny test CA", ca=True, eku=(), key_slot=34, serial=0x34, not_before=WIDE_FROM, not_after=WIDE_UNTIL
    )
    server = certs.issue(
        "localhost",
        issuer=ca,
        sans=("localhost",),
        eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
        key_slot=35,
        serial=0x35,
        not_before=WIDE_FROM,
        not_after=WIDE_UNTIL,
    )
    directory = tmp_path_factory.mktemp("tiny")
    (directory / "ca.pem").write_bytes(ca.pem)
    (directory / "server.pem").write_bytes(server.pem + server.key_pem())
    return directory


class TinyTls(ThreadingHTTPServer):
    """Answers GETs from ``routes`` {path: (status, body)}; the TLS handshake runs per connection."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, routes: dict):
        self.context, self.routes = context, routes
        self.requests: list[str] = []
        self.handshake_errors: list[ssl.SSLError] = []
        super().__init__(("127.0.0.1", 0), _TinyHandler)
        self.url = f"https://localhost:{self.server_address[1]}"

    def finish_request(self, request, client_address):
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.handshake_errors.append(exc)
            return
        super().finish_request(request, client_address)


class _TinyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.requests.append(self.path)
        status, body = self.server.routes.get(self.path, (404, b"{}"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def tiny_server(tiny_pki, ias):
    """Start TinyTls servers: ``tiny_server(verify_mode, routes)``; a policy trusting it and the stand-in."""
    bundle = tiny_pki / "bundle.pem"
    bundle.write_bytes((tiny_pki / "ca.pem").read_bytes() + ias.ca_file.read_bytes())
    started = []

    def start(verify_mode=ssl.CERT_NONE, routes=None) -> TinyTls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # TLS 1.2: a rejected client certificate is then answered by an alert inside the handshake,
        # not after it (TLS 1.3), so the client reliably reads the alert rather than a reset.
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(tiny_pki / "server.pem")
        context.verify_mode = verify_mode
        # Client certificates must come from the tiny CA, which did not issue ours.
        context.load_verify_locations(tiny_pki / "ca.pem")
        server = TinyTls(context, routes or {})
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        started.append(server)
        return server

    start.policy = lambda **changes: policy(
        **{
            "tenant_hosts": ("localhost", "127.0.0.1"),
            "outbound_allow": ("localhost", "127.0.0.1"),
            "ca_bundle": str(bundle),
            **changes,
        }
    )
    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def discovery_json(token_endpoint: str, jwks_uri: str) -> bytes:
    return json.dumps({"token_endpoint": token_endpoint, "jwks_uri": jwks_uri}).encode()


# --- 1. the success path ---------------------------------------------------------------------------


def test_it_gets_a_bound_token_validates_it_and_calls_the_backend(ias, registered):
    result = run(ias, registered)

    assert result.ok is True and result.failed_step is None
    assert [step.name for step in result.steps] == list(STEPS)
    assert [step.ok for step in result.steps] == [True, True, True, True]
    assert [step.code for step in result.steps] == ["ok"] * 4
    assert [step.status for step in result.steps] == [200, 200, None, 200]
    for step in result.steps:
        assert isinstance(step.duration_ms, float) and step.duration_ms >= 0
        assert step.to_dict()["duration_ms"] == round(step.duration_ms, 1)
    assert f"{ias.url}/oauth2/token" in result.step("discovery").diagnosis
    assert "Bearer token" in result.step("token").diagnosis
    assert "expires_in 3600" in result.step("token").diagnosis
    assert "certificate binding verified" in result.step("token_validation").diagnosis
    assert "accepted the token (200)" in result.step("backend").diagnosis
    # The token is bound to our certificate, and the claims say so.
    assert result.claims["cnf"]["x5t#S256"] == x5t_s256(registered.der)
    assert thumbprint(registered.der) == x5t_s256(registered.der)
    assert result.claims["iss"] == ias.url
    assert result.claims["aud"] == result.claims["sub"] == result.claims["azp"] == CLIENT
    now = int(certs.MID_LIFE.timestamp())
    assert (result.claims["iat"], result.claims["exp"]) == (now, now + 3600)
    assert result.claims["sap_id_type"] == "app" and result.claims["app_tid"]
    assert "jti" not in result.claims
    # IAS saw our certificate on the token request.
    assert ias.token_requests == [TokenRequest(CLIENT, x5t_s256(registered.der), 200, "jwt")]


def test_it_presents_the_bound_certificate_to_the_backend_with_backend_mtls(ias, registered):
    result = run(ias, registered, backend_url=ias.backend_url + "/cert/hello", backend_mtls=True)

    assert result.ok is True
    assert [step.status for step in result.steps] == [200, 200, None, 200]
    assert result.step("backend").code == "ok"


def test_it_skips_the_backend_without_a_backend_url(ias, registered):
    result = run(ias, registered, backend_url="")

    backend = result.step("backend")
    assert (backend.ok, backend.code, backend.status) == (None, "skipped", None)
    assert "no backend url" in backend.diagnosis.lower()
    assert result.ok is True and result.failed_step is None


def test_iterating_yields_each_step_as_it_completes(ias, registered):
    flow = TokenFlow(flow_request(ias, registered), TokenFlowOptions(policy=policy(ias)))
    seen = []
    for step in flow:
        # Each step is already in the result when it is handed out, the later ones not yet.
        seen.append(step)
        assert flow.result.steps == tuple(seen)

    assert [step.name for step in seen] == list(STEPS)
    assert flow.result.ok is True
    # The token lived only during the flow: no attribute of the finished flow holds it.
    [token] = ias.issued_tokens
    assert token not in repr(vars(flow))


def test_the_check_accepts_an_audience_list_that_contains_the_client_id(ias, registered):
    ias.faults.audience = [OTHER_CLIENT, CLIENT]

    result = run(ias, registered, backend_url="")

    assert result.ok is True
    assert result.claims["aud"] == [OTHER_CLIENT, CLIENT]


def test_it_forgives_clock_skew_within_sixty_seconds(ias, registered):
    ias.faults.token_lifetime = -30  # expired 30 s ago: within the default 60 s of skew

    result = run(ias, registered)

    assert result.ok is True, result.failed_step


# --- 2-4, 18. IAS refusing the client ----------------------------------------------------------------


def test_an_unregistered_certificate_is_invalid_client_not_a_tls_failure(ias, registered, stranger):
    result = run(ias, stranger)

    step = assert_failed_at(result, "token", "invalid_client", "not registered", CLIENT)
    assert step.status == 401
    assert "IAS said" in step.diagnosis
    # The TLS handshake went through: IAS got the request, with our certificate.
    assert ias.token_requests == [TokenRequest(CLIENT, x5t_s256(stranger.der), 401, "jwt")]
    assert result.claims == {}


def test_an_expired_certificate_is_invalid_client_saying_it_expired(ias, registered):
    with time_machine.travel(certs.AFTER_EXPIRY, tick=False):
        result = run(ias, registered)

    step = assert_failed_at(result, "token", "invalid_client")
    assert step.status == 401
    # IAS's own words, not only the generic hint.
    assert "The client certificate has expired" in step.diagnosis
    assert ias.token_requests == [TokenRequest(CLIENT, x5t_s256(registered.der), 401, "jwt")]


def test_a_certificate_not_yet_valid_is_invalid_client(ias, registered):
    with time_machine.travel(certs.BEFORE_ISSUE, tick=False):
        result = run(ias, registered)

    step = assert_failed_at(result, "token", "invalid_client")
    assert "not yet valid" in step.diagnosis


def test_a_wrong_client_id_is_invalid_client(ias, registered):
    result = run(ias, registered, client_id=OTHER_CLIENT)

    step = assert_failed_at(result, "token", "invalid_client", OTHER_CLIENT, "not registered")
    assert step.status == 401
    assert ias.token_requests == [TokenRequest(OTHER_CLIENT, x5t_s256(registered.der), 401, "jwt")]


def test_five_failures_lock_the_client_and_the_sixth_attempt_says_so(ias, registered, stranger):
    for _ in range(5):
        failed = run(ias, stranger)
        assert_failed_at(failed, "token", "invalid_client")

    result = run(ias, registered)  # the registered certificate, too late

    step = assert_failed_at(result, "token", "client_locked", "locked", CLIENT, "60 minutes")
    assert step.status == 401
    assert [r.status for r in ias.token_requests] == [401] * 6


# --- 5-9. what the token says ------------------------------------------------------------------------


def test_a_token_signed_with_a_key_outside_the_jwks_is_unknown_kid(ias, registered):
    ias.faults.sign_with_unknown_key = True

    result = run(ias, registered)

    [token] = ias.issued_tokens
    kid = b64url_json(token.split(".")[0])["kid"]
    step = assert_failed_at(result, "token_validation", "unknown_kid", kid, "does not publish")
    assert step.status is None


def test_a_token_signed_with_a_wrong_key_under_the_published_kid_is_bad_signature(ias, registered):
    ias.faults.sign_with_wrong_key_same_kid = True

    result = run(ias, registered)

    assert_failed_at(result, "token_validation", "bad_signature", "signature does not verify")


def test_a_wrong_issuer_is_refused(ias, registered):
    ias.faults.issuer = "https://evil.example.com"

    result = run(ias, registered)

    assert_failed_at(result, "token_validation", "wrong_issuer", "https://evil.example.com", "127.0.0.1")
    assert result.claims["iss"] == "https://evil.example.com"


def test_an_issuer_outside_the_trusted_domains_is_refused(ias, registered):
    ias.faults.issuer = "https://mytenant.accounts.cloud.sap"

    result = run(ias, registered, trusted_domains=("accounts.ondemand.com",))

    assert_failed_at(
        result, "token_validation", "wrong_issuer", "mytenant.accounts.cloud.sap", "accounts.ondemand.com"
    )


def test_a_wrong_audience_is_refused(ias, registered):
    ias.faults.audience = OTHER_CLIENT

    result = run(ias, registered)

    assert_failed_at(result, "token_validation", "wrong_audience", OTHER_CLIENT, CLIENT)


def test_an_expired_token_is_refused(ias, registered):
    ias.faults.token_lifetime = -600

    result = run(ias, registered)

    step = assert_failed_at(result, "token_validation", "expired_token", "expired")
    expired_at = datetime.fromtimestamp(certs.MID_LIFE.timestamp() - 600, UTC)
    assert expired_at.strftime("%Y-%m-%d %H:%M:%S UTC") in step.diagnosis


def test_a_token_issued_in_the_future_is_refused(ias, registered):
    # Our clock an hour behind the tenant's.
    options = TokenFlowOptions(policy=policy(ias), now=lambda: time.time() - 3600)

    result = run(ias, registered, options=options)

    assert_failed_at(result, "token_validation", "token_not_yet_valid", "issued in the future")


def test_a_token_bound_to_another_certificate_is_binding_mismatch(ias, registered, stranger):
    ias.faults.cnf_thumbprint = x5t_s256(stranger.der)

    result = run(ias, registered)

    step = assert_failed_at(result, "token_validation", "binding_mismatch", "x5t#S256")
    assert x5t_s256(stranger.der) in step.diagnosis
    assert x5t_s256(registered.der) in step.diagnosis


# --- 10-11. slow and closing servers ---------------------------------------------------------------


def test_a_token_endpoint_slower_than_the_read_timeout_is_timeout(ias, registered):
    ias.faults.delay["/oauth2/token"] = 1.0

    result = run(ias, registered, policy_changes={"read_timeout": 0.4})

    assert_failed_at(result, "token", "timeout", "did not answer within 0.4 s")
    # The flow gave up before the stand-in answered: it records a token request as it answers.
    assert ias.token_requests == []
    # It did answer, later: it was slow, not dead (and its late record lands in this test).
    assert wait_for(lambda: len(ias.token_requests) == 1)


def test_a_discovery_slower_than_the_read_timeout_is_timeout(ias, registered):
    ias.faults.delay["/.well-known/openid-configuration"] = 1.0

    result = run(ias, registered, policy_changes={"read_timeout": 0.4})

    assert_failed_at(result, "discovery", "timeout", "127.0.0.1", "did not answer within 0.4 s")
    assert ias.token_requests == []


def test_a_token_endpoint_closing_the_connection_is_closed(ias, registered):
    ias.faults.close = {"/oauth2/token"}

    result = run(ias, registered)

    assert_failed_at(result, "token", "closed", "closed the connection")
    assert ias.token_requests == []


# --- 12. the backend --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (401, "backend_401", ("refused the token (401)",)),
        (403, "backend_403", ("denied access (403)",)),
        (500, "backend_5xx", ("server error (500)",)),
        (503, "backend_5xx", ("server error (503)",)),
        (404, "unexpected_response", ("answered 404",)),
    ],
)
def test_backend_answers_are_named(ias, registered, status, code, words):
    ias.faults.backend_status = status

    result = run(ias, registered)

    step = assert_failed_at(result, "backend", code, *words)
    assert step.status == status


def test_the_certificate_route_without_the_certificate_is_backend_401(ias, registered):
    result = run(ias, registered, backend_url=ias.backend_url + "/cert/hello", backend_mtls=False)

    step = assert_failed_at(result, "backend", "backend_401", "401", "client certificate required")
    assert step.status == 401


def test_a_token_bound_elsewhere_passes_hello_but_binding_is_checked_first(ias, registered, stranger):
    # The plain route does not check the binding; the health check does, before calling it.
    ias.faults.cnf_thumbprint = x5t_s256(stranger.der)

    result = run(ias, registered, backend_url=ias.backend_url + "/cert/hello", backend_mtls=True)

    assert_failed_at(result, "token_validation", "binding_mismatch")


# --- 13-14. what the policy refuses before anything is sent ---------------------------------------


def test_plain_http_is_refused_before_any_connection(ias, registered):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        result = run(ias, registered, tenant_url=f"http://127.0.0.1:{port}")
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody knocked

    assert_failed_at(result, "discovery", "http_refused", "only https")


def test_plain_http_to_the_stand_in_reaches_nothing(ias, registered):
    result = run(ias, registered, tenant_url=ias.url.replace("https://", "http://"))

    assert_failed_at(result, "discovery", "http_refused", "plain http", "only https")
    assert ias.token_requests == []


def test_http_loopback_passes_the_policy_when_allowed(ias, registered):
    result = run(
        ias,
        registered,
        tenant_url=ias.url.replace("https://", "http://"),
        policy_changes={"allow_http_loopback": True},
    )

    step = result.step("discovery")
    # Sent: it then fails because the stand-in speaks TLS, not because of the policy.
    assert step.ok is False and step.code not in {"http_refused", "bad_url", "host_not_allowed"}
    assert step.code == "closed", step


def test_a_tenant_host_outside_the_allow_list_is_refused(ias, registered):
    result = run(ias, registered, policy_changes={"tenant_hosts": ("*.accounts.ondemand.com",)})

    assert_failed_at(result, "discovery", "host_not_allowed", "127.0.0.1", "not an allowed IAS tenant host")


def test_a_discovery_pointing_the_token_endpoint_elsewhere_is_refused(ias, registered, tiny_server):
    tiny = tiny_server(
        routes={
            "/.well-known/openid-configuration": (
                200,
                discovery_json("https://evil.example.com/oauth2/token", f"{ias.url}/oauth2/certs"),
            )
        }
    )

    result = run(ias, registered, tenant_url=tiny.url, options=TokenFlowOptions(policy=tiny_server.policy()))

    assert_failed_at(result, "discovery", "host_not_allowed", "evil.example.com")
    assert tiny.requests == ["/.well-known/openid-configuration"]


def test_a_token_endpoint_disguised_with_a_backslash_is_refused(ias, registered, tiny_server):
    with socket.create_server(("127.0.0.1", 0)) as outsider:
        port = outsider.getsockname()[1]
        tiny = tiny_server()
        # The host is "localhost" (allowed) for urlsplit, but 127.0.0.1:port for urllib3.
        tiny.routes["/.well-known/openid-configuration"] = (
            200,
            discovery_json(f"https://127.0.0.1:{port}\\@localhost/oauth2/token", f"{tiny.url}/oauth2/certs"),
        )
        options = TokenFlowOptions(
            policy=tiny_server.policy(tenant_hosts=("localhost",), read_timeout=0.3, connect_timeout=0.3)
        )

        result = run(ias, registered, tenant_url=tiny.url, options=options)

        outsider.settimeout(0.1)
        try:
            outsider.accept()[0].close()
            reached = True
        except TimeoutError:
            reached = False

    assert reached is False, "the client certificate's request went to 127.0.0.1, not an allowed host"
    assert result.step("discovery").ok is False
    assert result.step("discovery").code in {"bad_url", "host_not_allowed"}


def test_a_discovery_pointing_the_jwks_to_plain_http_is_refused(ias, registered, tiny_server):
    tiny = tiny_server(
        routes={
            "/.well-known/openid-configuration": (
                200,
                discovery_json(f"{ias.url}/oauth2/token", "http://127.0.0.1:1/oauth2/certs"),
            )
        }
    )

    result = run(ias, registered, tenant_url=tiny.url, options=TokenFlowOptions(policy=tiny_server.policy()))

    assert_failed_at(result, "discovery", "http_refused", "only https")


@pytest.mark.parametrize(
    "document",
    [b"not json", b"[1, 2]", json.dumps({"jwks_uri": "https://localhost/x"}).encode()],
    ids=["not-json", "not-an-object", "no-token-endpoint"],
)
def test_a_broken_discovery_document_is_unexpected_response(ias, registered, tiny_server, document):
    tiny = tiny_server(routes={"/.well-known/openid-configuration": (200, document)})

    result = run(ias, registered, tenant_url=tiny.url, options=TokenFlowOptions(policy=tiny_server.policy()))

    assert_failed_at(result, "discovery", "unexpected_response", "OpenID configuration")


def test_a_tenant_without_discovery_is_unexpected_response(ias, registered):
    result = run(ias, registered, tenant_url=ias.url + "/no-tenant-here")

    step = assert_failed_at(result, "discovery", "unexpected_response", "answered 404")
    assert step.status == 404


@pytest.mark.parametrize(
    ("path", "step"),
    [("/.well-known/openid-configuration", "discovery"), ("/oauth2/token", "token")],
)
def test_a_redirect_is_not_followed(ias, registered, path, step):
    ias.faults.redirect = {path: "https://evil.example.com/elsewhere"}

    result = run(ias, registered)

    failed = assert_failed_at(result, step, "redirect", "https://evil.example.com/elsewhere", "not followed")
    assert failed.status == 302
    assert ias.token_requests == []


# --- 15-17, 21. transport failures -------------------------------------------------------------------


def test_an_untrusted_server_certificate_is_untrusted_server(ias, registered):
    result = run(ias, registered, policy_changes={"ca_bundle": None})

    assert_failed_at(
        result, "discovery", "untrusted_server", "not trusted", "unable to get local issuer certificate"
    )


def test_an_unreadable_ca_bundle_is_named(ias, registered, tmp_path):
    result = run(ias, registered, policy_changes={"ca_bundle": str(tmp_path / "missing.pem")})

    assert_failed_at(result, "discovery", "ca_bundle", "missing.pem", "could not be read")


def test_a_port_with_nothing_listening_is_refused(ias, registered):
    result = run(ias, registered, tenant_url=f"https://127.0.0.1:{free_port()}")

    assert_failed_at(result, "discovery", "refused", "refused")


def test_a_port_with_nothing_listening_fails_at_discovery_as_refused_not_timed_out(ias, registered):
    # Refused at once, whatever the timeouts: the connection is refused, not waited for.
    changes = {"connect_timeout": 60.0, "read_timeout": 60.0}
    result = run(ias, registered, tenant_url=f"https://127.0.0.1:{free_port()}", policy_changes=changes)

    assert (result.failed_step.name, result.failed_step.code) == ("discovery", "refused")


def test_a_response_over_the_size_cap_is_too_large(ias, registered):
    result = run(ias, registered, policy_changes={"max_response_bytes": 100})

    assert_failed_at(result, "discovery", "too_large", "more than 100 bytes")


def test_a_client_certificate_from_the_wrong_ca_gets_a_tls_alert_at_the_token_endpoint(
    ias, registered, tiny_server
):
    # Asks for a client certificate but takes none: discovery works, our certificate is rejected.
    tiny = tiny_server(ssl.CERT_OPTIONAL)
    tiny.routes["/.well-known/openid-configuration"] = (
        200,
        discovery_json(f"{tiny.url}/oauth2/token", f"{tiny.url}/oauth2/certs"),
    )

    result = run(ias, registered, tenant_url=tiny.url, options=TokenFlowOptions(policy=tiny_server.policy()))

    assert_failed_at(result, "token", "tls_alert", "localhost", "alert 'unknown ca'")
    assert tiny.requests == ["/.well-known/openid-configuration"]
    # The server thread records its side of the handshake after the client has read the alert.
    assert wait_for(lambda: tiny.handshake_errors)  # the server did refuse our certificate


def test_a_backend_refusing_our_certificate_is_tls_alert(ias, registered, tiny_server):
    tiny = tiny_server(ssl.CERT_REQUIRED, routes={"/hello": (200, b"{}")})

    result = run(
        ias,
        registered,
        backend_url=tiny.url + "/hello",
        backend_mtls=True,
        options=TokenFlowOptions(policy=tiny_server.policy()),
    )

    assert_failed_at(result, "backend", "tls_alert", "alert 'unknown ca'")
    assert tiny.requests == []


def test_a_tenant_demanding_a_client_certificate_for_discovery_is_tls_alert(ias, registered, tiny_server):
    tiny = tiny_server(ssl.CERT_REQUIRED)

    result = run(ias, registered, tenant_url=tiny.url, options=TokenFlowOptions(policy=tiny_server.policy()))

    assert_failed_at(result, "discovery", "tls_alert", "alert 'handshake failure'")


# --- 19. never raises ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "step", "code"),
    [
        ({"tenant_url": "not a url"}, "discovery", "bad_url"),
        ({"tenant_url": ""}, "discovery", "bad_url"),
        ({"tenant_url": "ftp://127.0.0.1/"}, "discovery", "bad_url"),
        ({"key_der": "mismatched"}, "token", "bad_key"),
        ({"certificate_pem": b""}, "token", "bad_key"),
        ({"key_der": b"garbage"}, "token", "bad_key"),
        ({"certificate_pem": b"\xff\xfe not pem at all"}, "token", "bad_key"),
        ({"key_der": None}, "token", "unexpected_error"),
        ({"backend_url": "no scheme"}, "backend", "bad_url"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_it_never_raises_on_garbage_input(ias, registered, stranger, changes, step, code):
    if changes.get("key_der") == "mismatched":
        changes = {"key_der": key_der(stranger)}  # a real key, not the certificate's

    result = run(ias, registered, **changes)

    assert_failed_at(result, step, code)
    assert result.step(step).diagnosis


def test_a_mismatched_key_sends_nothing_to_the_token_endpoint(ias, registered, stranger):
    result = run(ias, registered, key_der=key_der(stranger))

    assert_failed_at(result, "token", "bad_key", "could not be loaded")
    assert ias.token_requests == []


# --- 20. the JWKS cache ------------------------------------------------------------------------------


def test_two_flows_fetch_the_jwks_once(ias, registered, jwks_fetches):
    first = run(ias, registered)
    ias.faults.close = {"/oauth2/certs"}  # a second fetch would now fail
    second = run(ias, registered)

    assert first.ok is True and second.ok is True
    assert jwks_fetches == [f"{ias.url}/oauth2/certs"]


def test_an_unknown_kid_refetches_the_jwks_once(ias, registered, jwks_fetches):
    assert run(ias, registered).ok is True
    ias.faults.sign_with_unknown_key = True

    result = run(ias, registered)

    assert_failed_at(result, "token_validation", "unknown_kid")
    assert jwks_fetches == [f"{ias.url}/oauth2/certs"] * 2


def test_the_refetch_for_an_unknown_kid_really_goes_to_the_tenant(ias, registered):
    assert run(ias, registered).ok is True
    ias.faults.sign_with_unknown_key = True
    ias.faults.close = {"/oauth2/certs"}

    result = run(ias, registered)

    # Not the cached answer: the tenant was asked again, and it closed the connection.
    assert_failed_at(result, "token_validation", "closed")


def test_a_jwks_older_than_its_max_age_is_fetched_again(ias, registered, jwks_fetches, monkeypatch):
    monkeypatch.setattr(tokencheck, "JWKS_MAX_AGE", 0.0)  # every cached JWKS is already too old

    assert run(ias, registered).ok is True
    assert run(ias, registered).ok is True

    assert len(jwks_fetches) == 2


def test_forget_cached_state_drops_the_jwks(ias, registered, jwks_fetches):
    assert run(ias, registered).ok is True
    forget_cached_state()
    assert run(ias, registered).ok is True

    assert len(jwks_fetches) == 2


def test_a_jwks_endpoint_answering_404_is_unexpected_response(ias, registered, tiny_server):
    tiny = tiny_server(
        routes={
            "/.well-known/openid-configuration": (
                200,
                # The stand-in answers its unknown paths with 404 and a JSON error body.
                discovery_json(f"{ias.url}/oauth2/token", f"{ias.url}/oauth2/no-keys-here"),
            )
        }
    )

    result = run(ias, registered, tenant_url=tiny.url, options=TokenFlowOptions(policy=tiny_server.policy()))

    assert_failed_at(result, "token_validation", "unexpected_response", "404")


# --- the discovery cache (like the JWKS's) and the client certificates' TLS contexts --------------------


@pytest.fixture
def discovery_fetches(monkeypatch):
    """The URLs of every discovery request the check sends."""
    return spy_requests(monkeypatch, "/.well-known/openid-configuration")


def plant_discovery(ias, **changes) -> None:
    """What a cached OpenID configuration would hold had the tenant moved an endpoint since."""
    document = requests_free_discovery(ias)
    tokencheck.keep_discovery(
        f"{ias.url}/.well-known/openid-configuration", policy(ias), {**document, **changes}
    )


def requests_free_discovery(ias) -> dict:
    with socket.create_connection(("127.0.0.1", int(ias.url.rsplit(":", 1)[1]))) as raw:
        context = ssl.create_default_context(cafile=str(ias.ca_file))
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(
                b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            )
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


def test_the_discovery_document_is_fetched_once_and_then_cached(ias, registered, discovery_fetches):
    first, second = run(ias, registered), run(ias, registered)

    assert first.ok is True and second.ok is True
    assert discovery_fetches == [f"{ias.url}/.well-known/openid-configuration"]
    assert first.step("discovery").status == 200
    cached = second.step("discovery")
    assert (cached.ok, cached.status) == (True, None)
    assert f"{ias.url}/oauth2/token" in cached.diagnosis and "fetched" in cached.diagnosis
    assert len(ias.token_requests) == 2  # the token itself is never cached


def test_a_discovery_older_than_its_max_age_is_fetched_again(ias, registered, discovery_fetches, monkeypatch):
    monkeypatch.setattr(tokencheck, "DISCOVERY_MAX_AGE", 0.0)

    assert run(ias, registered).ok is True
    assert run(ias, registered).ok is True

    assert len(discovery_fetches) == 2


def test_the_cached_discovery_is_checked_against_the_policy_of_each_check(ias, registered):
    assert run(ias, registered).ok is True

    result = run(ias, registered, policy_changes={"tenant_hosts": ("*.accounts.ondemand.com",)})

    assert_failed_at(result, "discovery", "host_not_allowed", "127.0.0.1")


def test_a_failed_token_call_fetches_discovery_again_once_without_a_second_login(
    ias, registered, stranger, discovery_fetches
):
    assert run(ias, registered).ok is True
    ias.token_requests.clear()

    result = run(ias, registered, certificate_pem=stranger.pem, key_der=key_der(stranger))

    assert_failed_at(result, "token", "invalid_client")
    assert len(discovery_fetches) == 2  # the cached document was checked against the tenant's
    assert len(ias.token_requests) == 1  # the endpoint did not move: the refused login is not repeated
    assert run(ias, registered).ok is True
    assert len(discovery_fetches) == 2  # and the document fetched again is cached


def test_a_token_endpoint_moved_since_the_discovery_was_cached_is_found(ias, registered, discovery_fetches):
    plant_discovery(ias, token_endpoint=f"{ias.url}/moved-away/oauth2/token")  # the stand-in: 404 there

    result = run(ias, registered)

    assert result.ok is True, result.failed_step
    assert len(discovery_fetches) == 1
    assert [entry.status for entry in ias.token_requests] == [200]


def test_a_closed_connection_at_the_token_endpoint_fetches_discovery_again(
    ias, registered, discovery_fetches
):
    assert run(ias, registered).ok is True
    ias.faults.close = {"/oauth2/token"}

    result = run(ias, registered)

    assert_failed_at(result, "token", "closed", "closed the connection")
    assert len(discovery_fetches) == 2


def test_a_jwks_moved_since_the_discovery_was_cached_is_found(
    ias, registered, discovery_fetches, jwks_fetches
):
    plant_discovery(ias, jwks_uri=f"{ias.url}/moved-away/oauth2/certs")  # the stand-in: 404 there

    result = run(ias, registered)

    assert result.ok is True, result.failed_step
    assert len(discovery_fetches) == 1
    assert jwks_fetches == [f"{ias.url}/moved-away/oauth2/certs", f"{ias.url}/oauth2/certs"]


def test_an_unknown_kid_with_a_cached_discovery_fetches_it_again_once(ias, registered, discovery_fetches):
    assert run(ias, registered).ok is True
    ias.faults.sign_with_unknown_key = True

    result = run(ias, registered)

    assert_failed_at(result, "token_validation", "unknown_kid")
    assert len(discovery_fetches) == 2
    assert len(ias.token_requests) == 2  # one per check: the token call is not repeated


def test_a_fresh_discovery_is_not_fetched_again_after_a_failure(ias, registered, stranger, discovery_fetches):
    result = run(ias, registered, certificate_pem=stranger.pem, key_der=key_der(stranger))

    assert_failed_at(result, "token", "invalid_client")
    assert len(discovery_fetches) == 1


def test_forget_cached_state_drops_the_discovery(ias, registered, discovery_fetches):
    assert run(ias, registered).ok is True
    forget_cached_state()
    assert run(ias, registered).ok is True

    assert len(discovery_fetches) == 2


def test_client_contexts_are_shared_per_certificate_key_and_ca_bundle(ias, registered, stranger):
    own = tokencheck.client_context(policy(ias), registered.pem, key_der(registered))

    assert (
        tokencheck.client_context(policy(ias, read_timeout=0.5), registered.pem, key_der(registered)) is own
    )
    assert tokencheck.client_context(policy(ias), stranger.pem, key_der(stranger)) is not own
    # A certificate with another's key (or chain) never gets the context of either.
    with pytest.raises(outbound.OutboundError, match="could not be loaded"):
        tokencheck.client_context(policy(ias), registered.pem, key_der(stranger))
    assert (
        tokencheck.client_context(policy(ias), registered.pem + stranger.pem, key_der(registered)) is not own
    )
    assert tokencheck.client_context(policy(None), registered.pem, key_der(registered)) is not own
    forget_cached_state()
    assert tokencheck.client_context(policy(ias), registered.pem, key_der(registered)) is not own


def test_client_contexts_are_bounded(ias, registered, stranger, monkeypatch):
    monkeypatch.setattr(tokencheck, "CLIENT_CONTEXT_ENTRIES", 1)
    own = tokencheck.client_context(policy(ias), registered.pem, key_der(registered))
    tokencheck.client_context(policy(ias), stranger.pem, key_der(stranger))

    assert len(tokencheck._client_contexts) == 1
    assert tokencheck.client_context(policy(ias), registered.pem, key_der(registered)) is not own


def test_client_contexts_and_their_keys_are_let_go_once_unused_for_their_max_age(
    ias, registered, stranger, monkeypatch
):
    own = tokencheck.client_context(policy(ias), registered.pem, key_der(registered))
    assert tokencheck.client_context(policy(ias), registered.pem, key_der(registered)) is own

    monkeypatch.setattr(tokencheck, "CLIENT_CONTEXT_MAX_AGE", 0.0)  # every cached context is too old
    other = tokencheck.client_context(policy(ias), stranger.pem, key_der(stranger))

    # The old context (and the key it holds) is gone, not merely skipped; the new one alone is kept.
    assert [context for _, context in tokencheck._client_contexts.values()] == [other]
    assert tokencheck.client_context(policy(ias), registered.pem, key_der(registered)) is not own


def test_each_check_makes_its_own_tls_handshake_with_a_cached_context(ias, registered):
    # The context is shared; connections are not: IAS sees the certificate in a new handshake each time.
    for _ in range(3):
        assert run(ias, registered).ok is True
    assert len(ias.token_requests) == 3
    assert (
        tokencheck.client_context(policy(ias), registered.pem, key_der(registered)).session_stats()["connect"]
        == 3
    )


# --- 24. the key never lands on disk ----------------------------------------------------------------


@pytest.fixture
def cert_chain_loads(monkeypatch):
    """What ssl.SSLContext.load_cert_chain saw at load time: path, modes, whether it held the key."""
    seen = []
    real = ssl.SSLContext.load_cert_chain

    def spy(self, certfile, *args, **kwargs):
        with open(certfile, "rb") as loaded:
            holds_key = b"PRIVATE KEY" in loaded.read()
        seen.append(
            {
                "path": str(certfile),
                "mode": os.stat(certfile).st_mode & 0o777,
                "dir_mode": os.stat(os.path.dirname(certfile)).st_mode & 0o777,
                "holds_key": holds_key,
                "target": os.readlink(certfile) if os.path.islink(certfile) else None,
            }
        )
        return real(self, certfile, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    return seen


def test_without_memfd_the_key_file_is_private_and_removed(
    ias, registered, stranger, monkeypatch, tmp_path, cert_chain_loads
):
    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    good = run(ias, registered)
    bad = run(ias, registered, key_der=key_der(stranger))

    assert good.ok is True
    assert_failed_at(bad, "token", "bad_key")
    assert len(cert_chain_loads) == 2
    for load in cert_chain_loads:
        assert load["path"].startswith(str(tmp_path) + os.sep)
        assert load["holds_key"] is True
        assert load["mode"] == 0o600
        assert load["dir_mode"] == 0o700
        assert not os.path.exists(load["path"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd is Linux only")
def test_with_memfd_the_key_never_touches_a_file_system(
    ias, registered, stranger, monkeypatch, tmp_path, cert_chain_loads
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    good = run(ias, registered)
    bad = run(ias, registered, key_der=key_der(stranger))

    assert good.ok is True
    assert_failed_at(bad, "token", "bad_key")
    assert len(cert_chain_loads) == 2
    for load in cert_chain_loads:
        assert load["path"].startswith("/proc/self/fd/")
        assert load["target"].startswith("/memfd:certmgr-client-key")
        assert load["holds_key"] is True
    assert list(tmp_path.iterdir()) == []


# --- 25. secrets stay out of results ----------------------------------------------------------------


def test_the_request_repr_holds_no_key(registered):
    request = TokenFlowRequest("https://t.accounts.ondemand.com", CLIENT, registered.pem, key_der(registered))
    text = repr(request)

    assert "key_der" not in text
    assert repr(key_der(registered))[:40] not in text
    assert base64.b64encode(key_der(registered))[:40].decode() not in text
    assert "PRIVATE KEY" not in text


def _exposed(result) -> str:
    return json.dumps([step.to_dict() for step in result.steps]) + json.dumps(result.claims) + repr(result)


@pytest.mark.parametrize(
    "fault",
    [
        {},
        {"audience": OTHER_CLIENT},
        {"issuer": "https://evil.example.com"},
        {"cnf_thumbprint": "AAAA"},
        {"sign_with_unknown_key": True},
        {"sign_with_wrong_key_same_kid": True},
        {"token_lifetime": -600},
        {"backend_status": 401},
    ],
    ids=lambda fault: ",".join(fault) or "none",
)
def test_results_never_hold_the_access_token(ias, registered, fault):
    for name, value in fault.items():
        setattr(ias.faults, name, value)

    result = run(ias, registered, backend_url=ias.backend_url + "/cert/hello")

    [token] = ias.issued_tokens
    exposed = _exposed(result)
    signature = token.rsplit(".", 1)[1]
    jti = b64url_json(token.split(".")[1])["jti"]
    assert token not in exposed
    assert signature not in exposed
    assert jti not in exposed and "jti" not in result.claims
    if fault.keys() & {"sign_with_unknown_key", "sign_with_wrong_key_same_kid"}:
        assert result.claims == {}  # claims the tenant's signature does not vouch for are not kept
    else:
        assert result.claims  # the non-secret claims are there


def test_key_bytes_are_in_no_result(ias, registered, stranger):
    for result in (run(ias, registered), run(ias, registered, key_der=key_der(stranger))):
        exposed = _exposed(result)
        for item in (registered, stranger):
            assert base64.b64encode(key_der(item))[20:60].decode() not in exposed
            assert "PRIVATE KEY" not in exposed


def test_pools_are_shared_per_ca_bundle(ias):
    # The JWKS/discovery pool (no client certificate) is reused; a changed bundle gets its own.
    first = tokenflow.shared_pool(policy(ias))
    assert tokenflow.shared_pool(policy(ias, read_timeout=0.5)) is first
    assert tokenflow.shared_pool(policy(None)) is not first
    forget_cached_state()
    assert tokenflow.shared_pool(policy(ias)) is not first
