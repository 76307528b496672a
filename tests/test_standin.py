"""The local IAS stand-in and its protected backend, driven as a client would: requests, ssl, cryptography.

Nothing from certmgr here: the stand-in checks the portal, so it is checked with independent code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import jwt as pyjwt
import pytest
import requests
import time_machine
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from iasstandin import Faults, StandIn, TokenRequest, register_in_directory
from tests import certs

REPO = Path(__file__).resolve().parents[1]
CLIENT = "5fd2be25-0e09-4321-8817-4a7b11a2ace2"
OTHER_CLIENT = "0c7a3f6e-5b1d-4c2a-9e8f-123456789abc"
GRANT = {"grant_type": "client_credentials", "client_id": CLIENT}
TIMEOUT = 10  # seconds; a broken stand-in must fail a test, not hang it


# --- an independent client ---------------------------------------------------------------------


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def x5t_s256(der: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def jwt_parts(token: str) -> tuple[dict, dict]:
    header, claims, _ = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(claims))


def verify_rs256(token: str, jwks: dict) -> dict:
    """The claims, once the signature verifies with the JWKS key the header names (raises otherwise)."""
    header, claims = jwt_parts(token)
    [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    n, e = (int.from_bytes(b64url_decode(jwk[x]), "big") for x in ("n", "e"))
    key = rsa.RSAPublicNumbers(e, n).public_key()
    signing_input, _, signature = token.rpartition(".")
    key.verify(b64url_decode(signature), signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return claims


class Client:
    """Files for requests: the stand-in's CA, and certificate + key per client certificate."""

    def __init__(self, directory: Path, standin: StandIn, issued: dict[str, certs.Issued]):
        self.ca = directory / "ca.pem"
        self.ca.write_bytes(standin.ca_pem)
        self.issued = issued
        self.files = {}
        for name, item in issued.items():
            self.files[name] = directory / f"{name}.pem"
            self.files[name].write_bytes(item.pem + item.key_pem())

    def token(self, s: StandIn, data=GRANT, cert: str | None = "a", **kwargs) -> requests.Response:
        cert_file = str(self.files[cert]) if cert else None
        return requests.post(
            f"{s.url}/oauth2/token", data=data, cert=cert_file, verify=self.ca, timeout=TIMEOUT, **kwargs
        )

    def get(self, url: str, token: str | None = None, cert: str | None = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        cert_file = str(self.files[cert]) if cert else None
        return requests.get(url, headers=headers, cert=cert_file, verify=self.ca, timeout=TIMEOUT, **kwargs)


@pytest.fixture(scope="module")
def module_standin():
    """This module's own stand-in, not conftest's shared one: its faults and lockouts touch no one else."""
    with StandIn() as s:
        s.register(CLIENT, certs.issue("frontend-app").pem)
        yield s


@pytest.fixture(scope="module")
def client(module_standin, tmp_path_factory):
    issued = {"a": certs.issue("frontend-app"), "b": certs.issue("stranger", key_slot=1, serial=0x2000)}
    return Client(tmp_path_factory.mktemp("client"), module_standin, issued)


@pytest.fixture
def s(module_standin):
    module_standin.reset()
    yield module_standin
    module_standin.reset()


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(certs.MID_LIFE, tick=False) as traveller:
        yield traveller


def a_token(s, client) -> str:
    response = client.token(s)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def error_of(response: requests.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"], body["error_description"]


# --- the tenant ---------------------------------------------------------------------------------


def test_discovery_and_jwks_describe_the_tenant(s, client):
    discovery = requests.get(
        f"{s.url}/.well-known/openid-configuration", verify=client.ca, timeout=TIMEOUT
    ).json()
    jwks = requests.get(discovery["jwks_uri"], verify=client.ca, timeout=TIMEOUT).json()

    assert discovery["issuer"] == s.url
    assert discovery["token_endpoint"] == f"{s.url}/oauth2/token"
    assert discovery["jwks_uri"] == f"{s.url}/oauth2/certs"
    assert discovery["authorization_endpoint"] == f"{s.url}/oauth2/authorize"
    assert discovery["tls_client_certificate_bound_access_tokens"] is True
    assert "tls_client_auth" in discovery["token_endpoint_auth_methods_supported"]
    assert "client_credentials" in discovery["grant_types_supported"]
    assert discovery["id_token_signing_alg_values_supported"] == ["RS256"]
    [key] = jwks["keys"]
    assert {k: key[k] for k in ("kty", "use", "alg")} == {"kty": "RSA", "use": "sig", "alg": "RS256"}
    assert int.from_bytes(b64url_decode(key["n"]), "big").bit_length() == 2048
    assert b64url_decode(key["e"]) == b"\x01\x00\x01"


def test_a_registered_certificate_gets_a_bound_token(s, client):
    jwks = requests.get(f"{s.url}/oauth2/certs", verify=client.ca, timeout=TIMEOUT).json()

    response = client.token(s)

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    token = body["access_token"]
    header, _ = jwt_parts(token)
    assert header == {"alg": "RS256", "kid": jwks["keys"][0]["kid"], "typ": "JWT"}
    claims = verify_rs256(token, jwks)
    now = int(certs.MID_LIFE.timestamp())
    assert claims["iss"] == s.url
    assert claims["sub"] == claims["azp"] == claims["aud"] == CLIENT
    assert (claims["iat"], claims["exp"]) == (now, now + 3600)
    assert claims["sap_id_type"] == "app" and claims["app_tid"] and claims["jti"]
    assert claims["cnf"] == {"x5t#S256": x5t_s256(client.issued["a"].der)}
    # The library the portal uses accepts it as well.
    key = pyjwt.PyJWK(jwks["keys"][0]).key
    assert pyjwt.decode(token, key, algorithms=["RS256"], audience=CLIENT, issuer=s.url)["sub"] == CLIENT
    assert s.issued_tokens == [token]
    assert s.token_requests == [TokenRequest(CLIENT, x5t_s256(client.issued["a"].der), 200)]


def test_every_token_is_new(s, client):
    first, second = a_token(s, client), a_token(s, client)

    assert jwt_parts(first)[1]["jti"] != jwt_parts(second)[1]["jti"]


@pytest.mark.parametrize(
    ("case", "data", "cert", "description"),
    [
        ("no certificate", GRANT, None, "No client certificate was presented"),
        (
            "unregistered certificate",
            GRANT,
            "b",
            "The client certificate is not registered for this client id",
        ),
        ("other client id", {**GRANT, "client_id": OTHER_CLIENT}, "a", "not registered for this client id"),
        ("client secret", {**GRANT, "client_secret": "s3cret"}, "a", "client secret"),
    ],
)
def test_client_authentication_failures_are_401_invalid_client(s, client, case, data, cert, description):
    response = client.token(s, data=data, cert=cert)

    status, error, text = error_of(response)
    assert (status, error) == (401, "invalid_client"), case
    assert description in text
    assert s.issued_tokens == []
    thumb = x5t_s256(client.issued[cert].der) if cert else None
    assert s.token_requests == [TokenRequest(data["client_id"], thumb, 401)]


def test_a_basic_authorization_header_counts_as_a_secret(s, client):
    response = client.token(s, auth=(CLIENT, "s3cret"))

    assert error_of(response)[:2] == (401, "invalid_client")


@pytest.mark.parametrize(
    ("instant", "description"),
    [(certs.AFTER_EXPIRY, "The client certificate has expired"), (certs.BEFORE_ISSUE, "not yet valid")],
)
def test_validity_is_judged_by_the_stand_ins_clock(s, client, frozen, instant, description):
    frozen.move_to(instant)

    status, error, text = error_of(client.token(s))

    assert (status, error) == (401, "invalid_client")
    assert description in text


@pytest.mark.parametrize(
    ("data", "kwargs", "expected"),
    [
        ({**GRANT, "grant_type": "password"}, {}, "unsupported_grant_type"),
        ({"client_id": CLIENT}, {}, "invalid_request"),
        ({"grant_type": "client_credentials"}, {}, "invalid_request"),
        (None, {"json": GRANT}, "invalid_request"),
    ],
    ids=["wrong grant", "no grant", "no client id", "json body"],
)
def test_malformed_requests_are_400(s, client, data, kwargs, expected):
    status, error, _ = error_of(client.token(s, data=data, **kwargs))

    assert (status, error) == (400, expected)


def test_only_the_first_certificate_of_a_chain_is_registered(s, client):
    s.register(OTHER_CLIENT, client.issued["b"].pem + client.issued["a"].pem)
    try:
        as_b = client.token(s, data={**GRANT, "client_id": OTHER_CLIENT}, cert="b")
        as_a = client.token(s, data={**GRANT, "client_id": OTHER_CLIENT}, cert="a")
    finally:
        s.unregister(OTHER_CLIENT)
    after = client.token(s, data={**GRANT, "client_id": OTHER_CLIENT}, cert="b")

    assert (as_b.status_code, as_a.status_code, after.status_code) == (200, 401, 401)
    assert jwt_parts(as_b.json()["access_token"])[1]["sub"] == OTHER_CLIENT


def test_five_failures_within_an_hour_lock_the_client_for_an_hour(s, client, frozen):
    for _ in range(4):
        assert client.token(s, cert="b").status_code == 401
    assert client.token(s).status_code == 200  # four are not enough
    assert client.token(s, cert="b").status_code == 401

    locked = error_of(client.token(s))
    other = client.token(s, data={**GRANT, "client_id": OTHER_CLIENT}, cert="b")
    frozen.shift(timedelta(minutes=59))
    still = error_of(client.token(s))
    frozen.shift(timedelta(minutes=1, seconds=1))
    after = client.token(s)

    expected = (401, "invalid_client", "The client is locked for 60 minutes after too many failed logins")
    assert locked == still == expected
    assert "not registered" in other.json()["error_description"]  # the lock is per client id
    assert after.status_code == 200


def test_failures_older_than_an_hour_do_not_count(s, client, frozen):
    for _ in range(4):
        client.token(s, cert="b")
    frozen.shift(timedelta(minutes=61))
    client.token(s, cert="b")

    assert client.token(s).status_code == 200


def test_reset_clears_faults_lockout_and_records_but_keeps_registrations(s, client):
    for _ in range(5):
        client.token(s, cert="b")
    s.faults.issuer = "https://elsewhere"
    s.faults.delay["/oauth2/certs"] = 9.0

    s.reset()

    assert s.faults == Faults()
    assert s.token_requests == [] and s.issued_tokens == []
    assert client.token(s).status_code == 200


def test_sixteen_concurrent_clients_all_get_their_tokens(s, client):
    def ten_tokens(_):
        with requests.Session() as session:
            responses = [
                session.post(
                    f"{s.url}/oauth2/token",
                    data=GRANT,
                    cert=str(client.files["a"]),
                    verify=client.ca,
                    timeout=TIMEOUT,
                )
                for _ in range(10)
            ]
        return [r.status_code for r in responses]

    with ThreadPoolExecutor(16) as pool:
        statuses = [status for batch in pool.map(ten_tokens, range(16)) for status in batch]

    assert statuses == [200] * 160
    assert len(s.token_requests) == 160
    assert len({jwt_parts(t)[1]["jti"] for t in s.issued_tokens}) == 160


# --- the protected backend ----------------------------------------------------------------------


def test_hello_answers_a_valid_token(s, client):
    response = client.get(f"{s.backend_url}/hello", a_token(s, client))

    assert response.status_code == 200
    assert response.json() == {"message": "Hello from the protected backend", "client_id": CLIENT}


def tampered(token: str) -> str:
    header, claims, signature = token.split(".")
    forged = json.loads(b64url_decode(claims)) | {"sub": "someone-else"}
    payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda t: None, "missing bearer token"),
        (tampered, "invalid signature"),
        (lambda t: "abc", "malformed"),
    ],
    ids=["no token", "tampered", "garbage"],
)
def test_hello_refuses_a_bad_token(s, client, make_token, reason):
    response = client.get(f"{s.backend_url}/hello", make_token(a_token(s, client)))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert reason in response.json()["error_description"]


def test_hello_forgives_sixty_seconds_of_clock_skew_and_no_more(s, client, frozen):
    token = a_token(s, client)
    frozen.shift(timedelta(seconds=3600 + 59))
    within = client.get(f"{s.backend_url}/hello", token)
    frozen.shift(timedelta(seconds=2))
    beyond = client.get(f"{s.backend_url}/hello", token)

    assert within.status_code == 200
    assert (beyond.status_code, beyond.json()["error_description"]) == (401, "token expired")


@pytest.mark.parametrize(
    ("cert", "status", "reason"),
    [
        ("a", 200, None),
        ("b", 401, "certificate binding mismatch"),
        (None, 401, "client certificate required"),
    ],
)
def test_cert_hello_wants_the_certificate_the_token_is_bound_to(s, client, cert, status, reason):
    response = client.get(f"{s.backend_url}/cert/hello", a_token(s, client), cert=cert)

    assert response.status_code == status
    if reason:
        assert response.json()["error_description"] == reason


# --- faults -------------------------------------------------------------------------------------


def test_fault_issuer(s, client):
    s.faults = Faults(issuer="https://evil.accounts.ondemand.com")  # replaced as a whole also counts
    token = a_token(s, client)

    assert jwt_parts(token)[1]["iss"] == "https://evil.accounts.ondemand.com"
    assert "wrong issuer" in client.get(f"{s.backend_url}/hello", token).json()["error_description"]


def test_fault_audience(s, client):
    s.faults.audience = ["someone-else", "another"]

    assert jwt_parts(a_token(s, client))[1]["aud"] == ["someone-else", "another"]


def test_fault_token_lifetime(s, client):
    s.faults.token_lifetime = -120
    response = client.token(s)
    token = response.json()["access_token"]
    claims = jwt_parts(token)[1]

    assert response.json()["expires_in"] == -120
    assert claims["exp"] == claims["iat"] - 120
    assert client.get(f"{s.backend_url}/hello", token).json()["error_description"] == "token expired"


def test_fault_sign_with_unknown_key(s, client):
    jwks = requests.get(f"{s.url}/oauth2/certs", verify=client.ca, timeout=TIMEOUT).json()
    s.faults.sign_with_unknown_key = True
    token = a_token(s, client)

    assert jwt_parts(token)[0]["kid"] not in {k["kid"] for k in jwks["keys"]}
    assert "unknown key id" in client.get(f"{s.backend_url}/hello", token).json()["error_description"]


def test_fault_sign_with_wrong_key_same_kid(s, client):
    jwks = requests.get(f"{s.url}/oauth2/certs", verify=client.ca, timeout=TIMEOUT).json()
    s.faults.sign_with_wrong_key_same_kid = True
    token = a_token(s, client)

    assert jwt_parts(token)[0]["kid"] == jwks["keys"][0]["kid"]
    with pytest.raises(InvalidSignature):
        verify_rs256(token, jwks)
    assert client.get(f"{s.backend_url}/hello", token).json()["error_description"] == "invalid signature"


def test_fault_cnf_thumbprint(s, client):
    s.faults.cnf_thumbprint = x5t_s256(client.issued["b"].der)
    token = a_token(s, client)

    assert jwt_parts(token)[1]["cnf"] == {"x5t#S256": x5t_s256(client.issued["b"].der)}
    assert client.get(f"{s.backend_url}/hello", token).status_code == 200
    assert client.get(f"{s.backend_url}/cert/hello", token, cert="a").status_code == 401


def test_fault_delay(s, client):
    s.faults.delay["/oauth2/certs"] = 1.0
    answered = threading.Event()

    def delayed():
        requests.get(f"{s.url}/oauth2/certs", verify=client.ca, timeout=TIMEOUT)
        answered.set()

    waiting = threading.Thread(target=delayed)
    waiting.start()
    time.sleep(0.2)  # undelayed, the first request would be answered by now
    other = requests.get(f"{s.url}/.well-known/openid-configuration", verify=client.ca, timeout=TIMEOUT)

    # Only the delayed path waits: the other is answered while the delayed one still is not.
    assert other.status_code == 200 and not answered.is_set()
    waiting.join(timeout=TIMEOUT)
    assert answered.is_set()


def test_latency_delays_every_answer_of_tenant_and_backend(s, client):
    # A remote IAS: every answer, of both listeners, comes ``latency`` seconds late (reset keeps it).
    s.latency = 2.0
    try:
        for url in (f"{s.url}/.well-known/openid-configuration", f"{s.backend_url}/hello"):
            with pytest.raises(requests.exceptions.ReadTimeout):
                requests.get(url, verify=client.ca, timeout=(TIMEOUT, 0.5))
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(
                f"{s.url}/oauth2/token",
                data=GRANT,
                cert=str(client.files["a"]),
                verify=client.ca,
                timeout=0.5,
            )
    finally:
        s.latency = 0.0
    assert client.token(s).status_code == 200


def test_latency_waits_overlap_as_a_remote_tenant_s_do(s, client):
    # Four clients at once, each answered 1 s late: served one after another, the last would wait
    # 4 s and time out at 2.5 s; the listeners serve each connection in its own thread.
    s.latency = 1.0
    try:
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda _: token_status(s, client, timeout=(TIMEOUT, 2.5)), range(4)))
    finally:
        s.latency = 0.0
    assert statuses == [200] * 4


def token_status(s, client, timeout) -> int:
    return requests.post(
        f"{s.url}/oauth2/token", data=GRANT, cert=str(client.files["a"]), verify=client.ca, timeout=timeout
    ).status_code


def test_the_latency_is_given_when_starting():
    with StandIn(latency=0.25) as slow:
        assert slow.latency == 0.25
        slow.reset()
        assert slow.latency == 0.25  # not a fault: reset keeps it


def test_fault_close(s, client):
    s.faults.close.add("/oauth2/token")

    with pytest.raises(requests.ConnectionError):
        client.token(s)
    assert requests.get(f"{s.url}/oauth2/certs", verify=client.ca, timeout=TIMEOUT).status_code == 200


def test_fault_redirect(s, client):
    s.faults.redirect["/.well-known/openid-configuration"] = "https://login.example.invalid/x"

    response = requests.get(
        f"{s.url}/.well-known/openid-configuration?x=1",
        verify=client.ca,
        allow_redirects=False,
        timeout=TIMEOUT,
    )

    assert (response.status_code, response.headers["Location"]) == (302, "https://login.example.invalid/x")


def test_fault_backend_status(s, client):
    token = a_token(s, client)
    s.faults.backend_status = 503

    response = client.get(f"{s.backend_url}/hello", token)

    assert response.status_code == 503
    assert response.json()["error"]


# --- the server ---------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", ""])  # noqa: S104
def test_it_refuses_to_listen_beyond_loopback(host):
    with pytest.raises(ValueError, match="loopback"):
        StandIn(host=host)


def test_stop_does_not_wait_for_open_and_pending_connections(tmp_path):
    s = StandIn(host="localhost").start()
    ca = tmp_path / "ca.pem"
    ca.write_bytes(s.ca_pem)
    idle = requests.Session()
    assert idle.get(f"{s.url}/oauth2/certs", verify=ca).status_code == 200
    assert s.url.startswith("https://localhost:")  # the server certificate names localhost too
    s.faults.delay["/oauth2/certs"] = 30
    pending = []
    waiting = threading.Thread(target=lambda: pending.append(_outcome(s, ca)))
    waiting.start()
    time.sleep(0.2)

    s.stop()
    waiting.join(timeout=2)

    # The pending request (30 s from its answer) was cut off, not waited for.
    assert not waiting.is_alive() and pending == ["ConnectionError"]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{s.url}/oauth2/certs", verify=ca, timeout=2)
    idle.close()


def _outcome(s, ca) -> str:
    try:
        return str(requests.get(f"{s.url}/oauth2/certs", verify=ca, timeout=10).status_code)
    except requests.ConnectionError:
        return "ConnectionError"


def test_broken_connections_end_quietly_and_the_server_goes_on(s, client):
    address = ("127.0.0.1", int(s.url.rsplit(":", 1)[1]))
    with socket.create_connection(address) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # no TLS at all
    socket.create_connection(address).close()  # gone before the handshake
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{s.url}/oauth2/certs", timeout=TIMEOUT)  # a client that does not trust the CA

    assert client.token(s).status_code == 200


def test_one_connection_carries_several_requests(s, client):
    context = ssl.create_default_context(cafile=str(client.ca))
    address = ("127.0.0.1", int(s.url.rsplit(":", 1)[1]))
    with socket.create_connection(address, timeout=TIMEOUT) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(
                b"GET /oauth2/certs HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            answer = b"".join(iter(lambda: tls.recv(65536), b""))

    first, _, rest = answer.partition(b"\r\n\r\n")
    length = int(next(h for h in first.split(b"\r\n") if h.startswith(b"Content-Length:")).split()[1])
    assert first.startswith(b"HTTP/1.1 200 ")
    assert json.loads(rest[:length])["keys"]
    assert rest[length:].startswith(b"HTTP/1.1 404 ")  # found right where Content-Length said


def test_a_directory_keeps_the_ca_keys_and_registrations_across_restarts(client, tmp_path):
    directory = tmp_path / "sandbox"
    with StandIn(directory=directory) as first:
        first.register(CLIENT, client.issued["a"].pem)
        first_jwks = requests.get(f"{first.url}/oauth2/certs", verify=first.ca_path, timeout=TIMEOUT).json()

    with StandIn(directory=directory) as second:
        jwks = requests.get(f"{second.url}/oauth2/certs", verify=second.ca_path, timeout=TIMEOUT).json()
        response = requests.post(
            f"{second.url}/oauth2/token",
            data=GRANT,
            cert=str(client.files["a"]),
            verify=second.ca_path,
            timeout=TIMEOUT,
        )

    assert second.ca_pem == first.ca_pem == (directory / "ca.pem").read_bytes()
    assert jwks == first_jwks
    assert response.status_code == 200
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in ("ca-key.pem", "server-key.pem", "signing-key.pem", "clients.json"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name


def test_register_in_directory_reaches_a_running_stand_in(client, tmp_path):
    directory = tmp_path / "sandbox"
    grant = {**GRANT, "client_id": OTHER_CLIENT}
    with StandIn(directory=directory) as s:
        post = lambda: requests.post(  # noqa: E731
            f"{s.url}/oauth2/token",
            data=grant,
            cert=str(client.files["b"]),
            verify=s.ca_path,
            timeout=TIMEOUT,
        )
        before = post().status_code
        register_in_directory(directory, OTHER_CLIENT, client.issued["b"].pem)
        register_in_directory(directory, OTHER_CLIENT, client.issued["b"].pem + client.issued["a"].pem)
        after = post().status_code
        s.unregister(OTHER_CLIENT)
        removed = post().status_code

    assert (before, after, removed) == (401, 200, 401)


def test_register_in_directory_is_idempotent(client, tmp_path):
    for _ in range(2):
        register_in_directory(tmp_path, CLIENT, client.issued["a"].pem)
    register_in_directory(tmp_path, CLIENT, client.issued["b"].pem)

    clients = json.loads((tmp_path / "clients.json").read_text())
    assert list(clients) == [CLIENT]
    assert clients[CLIENT] == [client.issued["a"].pem.decode(), client.issued["b"].pem.decode()]


def test_the_package_imports_neither_the_portal_nor_its_libraries():
    probe = (
        "import sys, iasstandin\n"
        "bad = {'certmgr', 'portal', 'django', 'jwt', 'requests', 'urllib3'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)

    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


def test_the_command_line_serves_until_sigterm(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    command = [sys.executable, "-m", "iasstandin", "--directory", str(tmp_path), "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--backend-port", "0"], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    printed = []
    reader = threading.Thread(target=lambda: printed.extend(proc.stdout.readline() for _ in range(3)))
    reader.start()
    reader.join(timeout=15)  # a child that hangs before printing must fail the test, not stall it
    try:
        assert len(printed) == 3 and all(printed), printed
        tenant, backend, ca = (line.split()[-1] for line in printed)
        discovery = requests.get(f"{tenant}/.well-known/openid-configuration", verify=ca, timeout=5)
        hello = requests.get(f"{backend}/hello", verify=ca, timeout=5)
        proc.terminate()
        code = proc.wait(timeout=5)
    finally:
        proc.kill()
        proc.stdout.close()

    assert discovery.json()["issuer"] == tenant
    assert hello.status_code == 401
    assert Path(ca) == tmp_path.resolve() / "ca.pem"
    assert code == 0
