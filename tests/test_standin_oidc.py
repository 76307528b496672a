"""The stand-in's OpenID Connect login (authorization code + PKCE), driven as a browser and a client would.

Independent code only: requests, html.parser, hashlib and cryptography; nothing from certmgr.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import stat
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import time_machine
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from iasstandin import (
    StandIn,
    TokenRequest,
    add_user_in_directory,
    register_in_directory,
    register_oidc_client_in_directory,
)
from tests import certs

CLIENT_ID = "8a1c2f0e-portal-login"
SECRET = "s3cret+with/odd:chars"
OTHER_ID = "other-app"
OTHER_SECRET = "other-secret"
CERT_ID = "3e9d41b7-x509-login"  # an application whose credential type is X509: no secret
CERT_REDIRECT = "https://cert.example.test/auth/callback"
API_ONLY_ID = "api-only"  # a certificate registered for client_credentials, but no OIDC client
REDIRECT = "https://portal.example.test/auth/callback"
OTHER_REDIRECT = "https://other.example.test/cb"
AFTER_LOGOUT = "https://portal.example.test/logged-out"
PASSWORD = "correct horse battery staple"
GROUPS = ["CertManagers", "Viewers"]
TIMEOUT = 10


# --- an independent client and browser ----------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pkce() -> tuple[str, str]:
    verifier = b64url(secrets.token_bytes(32))
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


def jwt_parts(token: str) -> tuple[dict, dict]:
    header, claims, _ = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(claims))


def verify_rs256(token: str, jwks: dict) -> dict:
    header, claims = jwt_parts(token)
    [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    n, e = (int.from_bytes(b64url_decode(jwk[x]), "big") for x in ("n", "e"))
    signing_input, _, signature = token.rpartition(".")
    key = rsa.RSAPublicNumbers(e, n).public_key()
    key.verify(b64url_decode(signature), signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert header["alg"] == "RS256"
    return claims


class Form(HTMLParser):
    """What a browser would make of the login page: the form, its fields, labels and buttons."""

    def __init__(self, text: str):
        super().__init__()
        self.forms, self.inputs, self.labels, self.buttons, self.tags = [], {}, {}, [], []
        self.alerts, self._label, self._button, self._alert = [], None, False, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "form":
            self.forms.append(a)
        elif tag == "input":
            self.inputs[a["name"]] = a
        elif tag == "label":
            self._label = a.get("for")
        elif tag == "button":
            self._button = True
        elif a.get("role") == "alert":
            self._alert = True

    def handle_endtag(self, tag):
        self._label, self._button, self._alert = None, False, False

    def handle_data(self, data):
        if self._label:
            self.labels[data.strip()] = self._label
        if self._button:
            self.buttons.append(data.strip())
        if self._alert:
            self.alerts.append(data.strip())


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Browser:
    def __init__(self, s: StandIn, ca):
        self.s, self.ca = s, ca
        self.session = requests.Session()
        self.session.verify = str(ca)
        self.session.trust_env = False  # else REQUESTS_CA_BUNDLE would override verify

    def authorize(self, **overrides) -> tuple[requests.Response, dict]:
        verifier, challenge = pkce()
        params = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "scope": "openid email profile groups",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params = {k: v for k, v in {**params, **overrides}.items() if v is not None}
        response = self.session.get(
            f"{self.s.url}/oauth2/authorize", params=params, allow_redirects=False, timeout=TIMEOUT
        )
        return response, {**params, "verifier": verifier}

    def submit(self, page: requests.Response, username: str, password: str) -> requests.Response:
        form = Form(page.text)
        [spec] = form.forms
        fields = {name: a.get("value", "") for name, a in form.inputs.items() if a.get("type") == "hidden"}
        fields[form.inputs[form.labels["Email or user name"]]["name"]] = username
        fields[form.inputs[form.labels["Password"]]["name"]] = password
        action = spec["action"] if spec["action"].startswith("https://") else f"{self.s.url}{spec['action']}"
        assert spec["method"].lower() == "post"
        return self.session.post(action, data=fields, allow_redirects=False, timeout=TIMEOUT)

    def log_on(self, username="alice", password=PASSWORD, **overrides) -> tuple[dict, dict]:
        """The query of the redirect back to the client, and the authorization request sent."""
        page, sent = self.authorize(**overrides)
        assert page.status_code == 200, page.text
        back = self.submit(page, username, password)
        assert back.status_code == 302, back.text
        assert back.headers["Location"].startswith(f"{sent['redirect_uri']}?")
        return query_of(back.headers["Location"]), sent

    def redeem(
        self, code, verifier, *, auth="basic", client=(CLIENT_ID, SECRET), redirect_uri=REDIRECT, cert=None
    ):
        """``auth``: basic, post, or cert (tls_client_auth: the client id in the form, no secret)."""
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if verifier is not None:
            data["code_verifier"] = verifier
        kwargs = {"cert": str(cert) if cert else None}
        if auth == "basic":
            kwargs["auth"] = client
        elif auth == "post":
            data |= {"client_id": client[0], "client_secret": client[1]}
        else:
            data["client_id"] = client[0]
        return requests.post(
            f"{self.s.url}/oauth2/token", data=data, verify=str(self.ca), timeout=TIMEOUT, **kwargs
        )

    def jwks(self) -> dict:
        return self.session.get(f"{self.s.url}/oauth2/certs", timeout=TIMEOUT).json()


@pytest.fixture(scope="module")
def module_standin():
    with StandIn() as s:
        s.register_oidc_client(CLIENT_ID, SECRET, [REDIRECT], post_logout_redirect_uris=[AFTER_LOGOUT])
        s.register_oidc_client(OTHER_ID, OTHER_SECRET, [OTHER_REDIRECT])
        s.register_oidc_client(CERT_ID, None, [CERT_REDIRECT])
        s.register(CERT_ID, certs.issue("frontend-app").pem)
        s.register(API_ONLY_ID, certs.issue("frontend-app").pem)
        s.alice = s.add_user(
            "alice",
            PASSWORD,
            email="Alice@Example.test",
            given_name="Alice",
            family_name="Able",
            groups=GROUPS,
        )
        yield s


@pytest.fixture(scope="module")
def ca(module_standin, tmp_path_factory):
    path = tmp_path_factory.mktemp("oidc") / "ca.pem"
    path.write_bytes(module_standin.ca_pem)
    return path


@pytest.fixture
def s(module_standin):
    module_standin.reset()
    yield module_standin
    module_standin.reset()


@pytest.fixture
def browser(s, ca):
    b = Browser(s, ca)
    yield b
    b.session.close()


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory) -> dict[str, Path]:
    """Certificate + key files for requests: "a" is registered for CERT_ID, "b" for nobody."""
    directory = tmp_path_factory.mktemp("client-certs")
    issued = {"a": certs.issue("frontend-app"), "b": certs.issue("stranger", key_slot=1, serial=0x2000)}
    files = {}
    for name, item in issued.items():
        files[name] = directory / f"{name}.pem"
        files[name].write_bytes(item.pem + item.key_pem())
    return files


@pytest.fixture
def mid_life():
    """The test certificates are valid from 2026-01-15 to 2027-01-15: be within, and let no time pass."""
    with time_machine.travel(certs.MID_LIFE, tick=False) as traveller:
        yield traveller


def error_of(response: requests.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"], body["error_description"]


# --- the happy path ---------------------------------------------------------------------------------


def test_discovery_lists_the_oidc_endpoints(s, browser):
    d = browser.session.get(f"{s.url}/.well-known/openid-configuration", timeout=TIMEOUT).json()

    assert d["authorization_endpoint"] == f"{s.url}/oauth2/authorize"
    assert d["userinfo_endpoint"] == f"{s.url}/oauth2/userinfo"
    assert d["end_session_endpoint"] == f"{s.url}/oauth2/logout"
    assert d["response_types_supported"] == ["code"]
    assert d["code_challenge_methods_supported"] == ["S256"]
    assert d["scopes_supported"] == ["openid", "email", "profile", "groups"]
    assert d["subject_types_supported"] == ["public"]
    assert {"client_secret_basic", "client_secret_post", "tls_client_auth"} <= set(
        d["token_endpoint_auth_methods_supported"]
    )


def test_the_login_page_is_a_plain_form_over_tls(s, browser):
    page, sent = browser.authorize()

    assert page.status_code == 200
    assert page.url.startswith("https://")
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    form = Form(page.text)
    assert set(form.labels) == {"Email or user name", "Password"}
    assert form.inputs[form.labels["Password"]]["type"] == "password"
    assert form.buttons == ["Log on"]
    assert form.forms == [{"method": "post", "action": "/oauth2/authorize"}]
    hidden = {n: a["value"] for n, a in form.inputs.items() if a.get("type") == "hidden"}
    assert hidden == {k: v for k, v in sent.items() if k != "verifier"}
    # Nothing to load or run: no script, no external resource.
    assert not [
        t for t, a in form.tags if t in ("script", "link", "img", "iframe") or "src" in a or "href" in a
    ]
    assert not any(name.startswith("on") for _, a in form.tags for name in a)


def test_log_on_redeem_the_code_and_ask_userinfo(s, browser):
    back, sent = browser.log_on()
    assert set(back) == {"code", "state"} and back["state"] == sent["state"]

    response = browser.redeem(back["code"], sent["verifier"])

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    jwks = browser.jwks()
    claims = verify_rs256(body["id_token"], jwks)
    assert claims["iss"] == s.url and "ias_iss" not in claims  # ias_iss marks a custom domain
    assert claims["aud"] == claims["azp"] == CLIENT_ID
    assert claims["sub"] == claims["user_uuid"] == s.alice
    assert claims["nonce"] == sent["nonce"]
    assert claims["email"] == "Alice@Example.test"
    assert (claims["given_name"], claims["family_name"]) == ("Alice", "Able")
    assert claims["groups"] == GROUPS
    assert claims["exp"] - claims["iat"] == 3600 and claims["sid"]
    assert claims["at_hash"] == b64url(hashlib.sha256(body["access_token"].encode()).digest()[:16])
    access = verify_rs256(body["access_token"], jwks)
    assert access["sub"] == s.alice and access["iss"] == s.url
    assert access["scope"] == "openid email profile groups"
    assert s.issued_tokens == [body["access_token"]]

    info = browser.session.get(
        f"{s.url}/oauth2/userinfo",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=TIMEOUT,
    )
    assert info.status_code == 200
    assert info.json() == {
        "sub": s.alice,
        "email": "Alice@Example.test",
        "given_name": "Alice",
        "family_name": "Able",
        "name": "Alice Able",
        "groups": GROUPS,
        "user_uuid": s.alice,
    }


def test_client_secret_post_and_log_on_by_email_in_any_case(s, browser):
    back, sent = browser.log_on(username="alice@example.TEST", nonce=None)

    response = browser.redeem(back["code"], sent["verifier"], auth="post")

    assert response.status_code == 200, response.text
    assert "nonce" not in jwt_parts(response.json()["id_token"])[1]


# --- the authorization endpoint's errors ------------------------------------------------------------


def test_a_wrong_password_shows_the_form_again(s, browser):
    page, sent = browser.authorize()

    for user, password in [("alice", "wrong"), ("nobody", PASSWORD), ("alice", "")]:
        again = browser.submit(page, user, password)
        assert again.status_code == 200 and "Location" not in again.headers
        form = Form(again.text)
        assert form.alerts == ["Invalid credentials"]
        assert form.inputs["state"]["value"] == sent["state"]
    assert browser.submit(again, "alice", PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        ({"redirect_uri": "https://evil.example.test/cb"}, "not registered"),
        ({"redirect_uri": REDIRECT + "/"}, "not registered"),
        ({"redirect_uri": OTHER_REDIRECT}, "not registered"),
        ({"redirect_uri": None}, "no redirect_uri"),
        ({"client_id": "unknown"}, "Unknown client"),
        ({"client_id": None}, "no client"),
    ],
)
def test_an_unknown_client_or_redirect_uri_is_an_error_page_not_a_redirect(s, browser, overrides, text):
    page, _ = browser.authorize(**overrides)

    assert page.status_code == 400
    assert "Location" not in page.headers
    assert page.headers["Content-Type"].startswith("text/html")
    assert text in page.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"scope": "email"}, "invalid_scope"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"prompt": "none"}, "login_required"),
    ],
)
def test_other_errors_go_back_to_the_client_with_the_state(s, browser, overrides, error):
    page, sent = browser.authorize(**overrides)

    assert page.status_code == 302
    location = page.headers["Location"]
    assert location.startswith(f"{REDIRECT}?")
    back = query_of(location)
    assert (back["error"], back["state"]) == (error, sent["state"])
    assert back["error_description"]


# --- the token endpoint's errors ----------------------------------------------------------------------


def test_a_wrong_code_verifier_is_invalid_grant_and_spends_the_code(s, browser):
    back, sent = browser.log_on()

    wrong = browser.redeem(back["code"], pkce()[0])
    right = browser.redeem(back["code"], sent["verifier"])

    assert error_of(wrong)[:2] == (400, "invalid_grant")
    assert "code_verifier" in error_of(wrong)[2]
    assert error_of(right)[:2] == (400, "invalid_grant")


def test_a_missing_code_verifier_is_invalid_grant(s, browser):
    back, _ = browser.log_on()

    assert error_of(browser.redeem(back["code"], None))[:2] == (400, "invalid_grant")


def test_a_code_is_good_once(s, browser):
    back, sent = browser.log_on()

    first = browser.redeem(back["code"], sent["verifier"])
    second = browser.redeem(back["code"], sent["verifier"])

    assert first.status_code == 200
    assert error_of(second) == (400, "invalid_grant", "The authorization code is invalid or was used already")


@pytest.mark.parametrize(("seconds", "status"), [(59, 200), (61, 400)])
def test_a_code_lives_sixty_seconds(s, browser, seconds, status):
    with time_machine.travel(certs.MID_LIFE, tick=False) as traveller:
        back, sent = browser.log_on()
        traveller.shift(timedelta(seconds=seconds))
        response = browser.redeem(back["code"], sent["verifier"])

    assert response.status_code == status, response.text
    if status == 400:
        assert error_of(response) == (400, "invalid_grant", "The authorization code has expired")


def test_the_redirect_uri_must_match_the_authorization_request(s, browser):
    back, sent = browser.log_on()

    response = browser.redeem(back["code"], sent["verifier"], redirect_uri=REDIRECT + "?x=1")

    assert error_of(response)[:2] == (400, "invalid_grant")


def test_a_code_is_bound_to_its_client(s, browser):
    back, sent = browser.log_on()

    response = browser.redeem(back["code"], sent["verifier"], client=(OTHER_ID, OTHER_SECRET))

    assert error_of(response) == (400, "invalid_grant", "The authorization code was issued to another client")


@pytest.mark.parametrize("auth", ["basic", "post"])
@pytest.mark.parametrize("client", [(CLIENT_ID, "wrong"), ("unknown", SECRET)], ids=["secret", "client"])
def test_wrong_client_credentials_are_401_invalid_client(s, browser, auth, client):
    back, sent = browser.log_on()

    wrong = browser.redeem(back["code"], sent["verifier"], auth=auth, client=client)
    right = browser.redeem(back["code"], sent["verifier"], auth=auth)

    assert error_of(wrong)[:2] == (401, "invalid_client")
    assert right.status_code == 200  # a client that failed to authenticate does not spend the code


def test_no_client_authentication_is_401(s, browser):
    data = {"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT, "client_id": CLIENT_ID}
    response = requests.post(f"{s.url}/oauth2/token", data=data, verify=str(browser.ca), timeout=TIMEOUT)

    assert error_of(response)[:2] == (401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_userinfo_wants_a_valid_user_token(s, browser):
    for headers in ({}, {"Authorization": "Bearer abc"}):
        response = browser.session.get(f"{s.url}/oauth2/userinfo", headers=headers, timeout=TIMEOUT)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


# --- faults ----------------------------------------------------------------------------------------


def id_token_with(s, browser, **faults) -> tuple[dict, dict]:
    for name, value in faults.items():
        setattr(s.faults, name, value)
    back, sent = browser.log_on()
    response = browser.redeem(back["code"], sent["verifier"])
    assert response.status_code == 200, response.text
    return response.json(), sent


def test_fault_id_token_issuer_and_audience(s, browser):
    body, _ = id_token_with(
        s, browser, id_token_issuer="https://evil.example.test", id_token_audience=["x", "y"]
    )

    claims = verify_rs256(body["id_token"], browser.jwks())
    assert (claims["iss"], claims["aud"]) == ("https://evil.example.test", ["x", "y"])
    assert jwt_parts(body["access_token"])[1]["iss"] == s.url  # the access token is left alone


def test_fault_id_token_sign_with_unknown_key(s, browser):
    body, _ = id_token_with(s, browser, id_token_sign_with_unknown_key=True)

    kids = {k["kid"] for k in browser.jwks()["keys"]}
    assert jwt_parts(body["id_token"])[0]["kid"] not in kids
    assert jwt_parts(body["access_token"])[0]["kid"] in kids


def test_fault_id_token_nonce_and_lifetime(s, browser):
    body, sent = id_token_with(s, browser, id_token_nonce="not-yours", id_token_lifetime=-60)

    claims = verify_rs256(body["id_token"], browser.jwks())
    assert claims["nonce"] == "not-yours" != sent["nonce"]
    assert claims["exp"] == claims["iat"] - 60


# --- logout ----------------------------------------------------------------------------------------


def logout(s, browser, **params) -> requests.Response:
    return browser.session.get(
        f"{s.url}/oauth2/logout", params=params, allow_redirects=False, timeout=TIMEOUT
    )


def test_logout_goes_back_only_to_a_registered_uri_of_the_hinted_client(s, browser):
    body, _ = id_token_with(s, browser)
    hint = body["id_token"]

    back = logout(s, browser, post_logout_redirect_uri=AFTER_LOGOUT, id_token_hint=hint, state="st")
    unregistered = logout(
        s, browser, post_logout_redirect_uri="https://evil.example.test/", id_token_hint=hint
    )
    callback = logout(s, browser, post_logout_redirect_uri=REDIRECT, id_token_hint=hint)
    no_hint = logout(s, browser, post_logout_redirect_uri=AFTER_LOGOUT)
    other_client = logout(
        s, browser, post_logout_redirect_uri=AFTER_LOGOUT, id_token_hint=hint, client_id=OTHER_ID
    )
    header, claims, signature = hint.split(".")
    forged = b64url(json.dumps(jwt_parts(hint)[1] | {"aud": OTHER_ID, "azp": OTHER_ID}).encode())
    tampered = logout(
        s, browser, post_logout_redirect_uri=AFTER_LOGOUT, id_token_hint=f"{header}.{forged}.{signature}"
    )
    client_only = logout(s, browser, post_logout_redirect_uri=AFTER_LOGOUT, client_id=CLIENT_ID)
    plain = logout(s, browser)

    assert (back.status_code, back.headers["Location"]) == (302, f"{AFTER_LOGOUT}?state=st")
    for page in (unregistered, callback, no_hint, other_client, tampered, client_only, plain):
        assert page.status_code == 200 and "Location" not in page.headers
        assert "You are logged out" in page.text


# --- persistence -------------------------------------------------------------------------------------


def test_a_directory_keeps_oidc_clients_and_users_across_restarts(tmp_path):
    directory = tmp_path / "sandbox"
    with StandIn(directory=directory) as first:
        first.register_oidc_client(CLIENT_ID, SECRET, [REDIRECT])
        user_id = first.add_user("bob", PASSWORD, email="bob@example.test", groups=["G"])

    with StandIn(directory=directory) as second:
        b = Browser(second, second.ca_path)
        back, sent = b.log_on(username="bob")
        response = b.redeem(back["code"], sent["verifier"])
        b.session.close()

    assert response.status_code == 200, response.text
    claims = jwt_parts(response.json()["id_token"])[1]
    assert (claims["sub"], claims["groups"]) == (user_id, ["G"])
    oidc_file = directory / "oidc.json"
    assert stat.S_IMODE(oidc_file.stat().st_mode) == 0o600
    text = oidc_file.read_text()
    assert SECRET not in text and PASSWORD not in text  # only salted hashes


def test_the_directory_functions_reach_a_running_stand_in(tmp_path):
    directory = tmp_path / "sandbox"
    with StandIn(directory=directory) as s:
        b = Browser(s, s.ca_path)
        before, _ = b.authorize()
        register_oidc_client_in_directory(directory, CLIENT_ID, SECRET, [REDIRECT])
        first_id = add_user_in_directory(directory, "carol", "old", email="carol@example.test")
        same_id = add_user_in_directory(
            directory, "carol", PASSWORD, email="carol@example.test", groups=["New"]
        )
        back, sent = b.log_on(username="carol")
        response = b.redeem(back["code"], sent["verifier"])
        b.session.close()

    assert before.status_code == 400 and "Unknown client" in before.text
    assert first_id == same_id
    assert response.status_code == 200, response.text
    assert jwt_parts(response.json()["id_token"])[1]["groups"] == ["New"]


def test_registration_refuses_nonsense(s):
    with pytest.raises(ValueError, match="redirect_uris"):
        s.register_oidc_client("x", "y", REDIRECT)  # a string, not a list
    with pytest.raises(ValueError, match="absolute"):
        s.register_oidc_client("x", "y", ["/relative"])
    with pytest.raises(ValueError, match="must not be empty"):
        s.register_oidc_client("x", "", [REDIRECT])


def test_five_wrong_secrets_lock_the_client_as_for_certificates(s, browser):
    back, sent = browser.log_on()
    for _ in range(5):
        assert browser.redeem(back["code"], sent["verifier"], client=(CLIENT_ID, "wrong")).status_code == 401

    locked = browser.redeem(back["code"], sent["verifier"])

    assert error_of(locked) == (
        401,
        "invalid_client",
        "The client is locked for 60 minutes after too many failed logins",
    )
    assert [r.status for r in s.token_requests] == [401] * 6
    assert {r.client_id for r in s.token_requests} == {CLIENT_ID}


# --- tls_client_auth: the client certificate instead of a secret ------------------------------------

NOT_REGISTERED = "The client certificate is not registered for this client id"
LOCKED = "The client is locked for 60 minutes after too many failed logins"


def x5t_s256(der: bytes) -> str:
    return b64url(hashlib.sha256(der).digest())


def redeem_with_cert(browser, back, sent, cert, client_id=CERT_ID) -> requests.Response:
    return browser.redeem(
        back["code"],
        sent["verifier"],
        auth="cert",
        client=(client_id, None),
        redirect_uri=CERT_REDIRECT,
        cert=cert,
    )


def test_a_certificate_only_client_logs_on_with_its_certificate(s, browser, cert_files, mid_life):
    back, sent = browser.log_on(client_id=CERT_ID, redirect_uri=CERT_REDIRECT)

    response = redeem_with_cert(browser, back, sent, cert_files["a"])

    assert response.status_code == 200, response.text
    body = response.json()
    jwks = browser.jwks()
    claims = verify_rs256(body["id_token"], jwks)
    assert claims["aud"] == claims["azp"] == CERT_ID
    assert (claims["iss"], claims["sub"], claims["nonce"]) == (s.url, s.alice, sent["nonce"])
    access = verify_rs256(body["access_token"], jwks)
    assert (access["azp"], access["sub"]) == (CERT_ID, s.alice)
    assert s.issued_tokens == [body["access_token"]]
    assert s.token_requests == [TokenRequest(CERT_ID, x5t_s256(certs.issue("frontend-app").der), 200)]


def test_a_certificate_only_client_without_a_certificate_is_401(s, browser, cert_files, mid_life):
    back, sent = browser.log_on(client_id=CERT_ID, redirect_uri=CERT_REDIRECT)

    without = redeem_with_cert(browser, back, sent, None)
    with_it = redeem_with_cert(browser, back, sent, cert_files["a"])

    assert error_of(without) == (401, "invalid_client", "No client certificate was presented")
    assert with_it.status_code == 200, with_it.text  # a failed authentication does not spend the code
    assert [(r.client_id, r.thumbprint, r.status) for r in s.token_requests][0] == (CERT_ID, None, 401)


def test_an_unregistered_certificate_is_401(s, browser, cert_files, mid_life):
    back, sent = browser.log_on(client_id=CERT_ID, redirect_uri=CERT_REDIRECT)

    response = redeem_with_cert(browser, back, sent, cert_files["b"])

    assert error_of(response) == (401, "invalid_client", NOT_REGISTERED)
    stranger = certs.issue("stranger", key_slot=1, serial=0x2000)
    assert s.token_requests == [TokenRequest(CERT_ID, x5t_s256(stranger.der), 401)]


@pytest.mark.parametrize("cert", [None, "a"], ids=["no-cert", "registered-cert"])
@pytest.mark.parametrize("auth", ["basic", "post"])
def test_a_secret_for_a_certificate_only_client_is_401(s, browser, cert_files, mid_life, auth, cert):
    back, sent = browser.log_on(client_id=CERT_ID, redirect_uri=CERT_REDIRECT)

    response = browser.redeem(
        back["code"],
        sent["verifier"],
        auth=auth,
        client=(CERT_ID, "a-guessed-secret"),
        redirect_uri=CERT_REDIRECT,
        cert=cert_files[cert] if cert else None,
    )

    assert error_of(response) == (
        401,
        "invalid_client",
        "A client secret was sent; this client must use its certificate",
    )


def test_a_client_with_a_secret_may_use_a_registered_certificate_instead(s, browser, cert_files, mid_life):
    back, sent = browser.log_on()

    unregistered = browser.redeem(back["code"], sent["verifier"], auth="cert", cert=cert_files["a"])
    s.register(CLIENT_ID, certs.issue("frontend-app").pem)
    try:
        registered = browser.redeem(back["code"], sent["verifier"], auth="cert", cert=cert_files["a"])
    finally:
        s.unregister(CLIENT_ID)

    assert error_of(unregistered) == (401, "invalid_client", NOT_REGISTERED)
    assert registered.status_code == 200, registered.text
    assert jwt_parts(registered.json()["id_token"])[1]["aud"] == CLIENT_ID


@pytest.mark.parametrize(
    ("instant", "description"),
    [
        (certs.AFTER_EXPIRY, "The client certificate has expired"),
        (certs.BEFORE_ISSUE, "The client certificate is not yet valid"),
    ],
)
def test_the_certificate_must_be_valid_by_the_stand_ins_clock(s, browser, cert_files, instant, description):
    with time_machine.travel(instant, tick=False):
        back, sent = browser.log_on(client_id=CERT_ID, redirect_uri=CERT_REDIRECT)
        response = redeem_with_cert(browser, back, sent, cert_files["a"])

    assert error_of(response) == (401, "invalid_client", description)


def test_five_wrong_certificates_lock_the_client(s, browser, cert_files, mid_life):
    back, sent = browser.log_on(client_id=CERT_ID, redirect_uri=CERT_REDIRECT)
    for _ in range(5):
        assert redeem_with_cert(browser, back, sent, cert_files["b"]).status_code == 401

    locked = redeem_with_cert(browser, back, sent, cert_files["a"])

    assert error_of(locked) == (401, "invalid_client", LOCKED)
    assert [r.status for r in s.token_requests] == [401] * 6


def test_a_certificate_of_a_client_without_oidc_login_is_401(s, browser, cert_files, mid_life):
    back, sent = browser.log_on(client_id=CERT_ID, redirect_uri=CERT_REDIRECT)

    # API_ONLY_ID has this certificate registered (client_credentials), but is no OIDC client.
    response = redeem_with_cert(browser, back, sent, cert_files["a"], client_id=API_ONLY_ID)

    assert error_of(response) == (
        401,
        "invalid_client",
        "The client id is not a registered OpenID Connect client",
    )


def test_a_certificate_without_a_client_id_is_400(s, browser, cert_files, mid_life):
    data = {"grant_type": "authorization_code", "code": "x", "redirect_uri": CERT_REDIRECT}
    response = requests.post(
        f"{s.url}/oauth2/token", data=data, cert=str(cert_files["a"]), verify=str(browser.ca), timeout=TIMEOUT
    )

    assert error_of(response) == (400, "invalid_request", "The client_id parameter is missing")


def test_a_certificate_only_client_from_the_directory_files(tmp_path, cert_files, mid_life):
    directory = tmp_path / "sandbox"
    with StandIn(directory=directory) as s:
        register_oidc_client_in_directory(directory, CERT_ID, None, [CERT_REDIRECT])
        register_in_directory(directory, CERT_ID, certs.issue("frontend-app").pem)
        add_user_in_directory(directory, "dave", PASSWORD, email="dave@example.test")
        b = Browser(s, s.ca_path)
        back, sent = b.log_on(username="dave", client_id=CERT_ID, redirect_uri=CERT_REDIRECT)
        with_secret = b.redeem(
            back["code"], sent["verifier"], client=(CERT_ID, "x"), redirect_uri=CERT_REDIRECT
        )
        response = redeem_with_cert(b, back, sent, cert_files["a"])
        b.session.close()

    assert error_of(with_secret)[:2] == (401, "invalid_client")
    assert response.status_code == 200, response.text
    assert jwt_parts(response.json()["id_token"])[1]["aud"] == CERT_ID
    assert json.loads((directory / "oidc.json").read_text())["clients"][CERT_ID]["secret"] is None
