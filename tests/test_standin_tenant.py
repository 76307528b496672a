"""The stand-in's tenant settings (iasstandin/tenant.py): legal IAS behaviour, switched per client.

Independent code only, as in test_standin.py: requests, hashlib, cryptography; nothing from certmgr.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import time_machine

from iasstandin import StandIn, TenantSettings, TokenRequest
from tests import certs
from tests.test_standin import Client, jwt_parts, verify_rs256, x5t_s256
from tests.test_standin_oidc import CLIENT_ID, PASSWORD, REDIRECT, SECRET, Browser

REPO = Path(__file__).resolve().parents[1]
CLIENT = "9d0f4c1e-tenant-settings"
PLAIN = "2b7e151c-default-client"  # a client of the same tenant without settings
CUSTOM = "https://login.example.test"
TIMEOUT = 10


@pytest.fixture(scope="module")
def module_standin():
    with StandIn() as s:
        pem = certs.issue("frontend-app").pem
        s.register(CLIENT, pem)
        s.register(PLAIN, pem)
        s.register_oidc_client(CLIENT_ID, SECRET, [REDIRECT])
        s.add_user("alice", PASSWORD, email="alice@example.test", given_name="Alice")
        yield s


@pytest.fixture(scope="module")
def client(module_standin, tmp_path_factory):
    issued = {"a": certs.issue("frontend-app")}
    return Client(tmp_path_factory.mktemp("tenant-client"), module_standin, issued)


@pytest.fixture
def s(module_standin):
    module_standin.reset()
    with time_machine.travel(certs.MID_LIFE, tick=False):
        yield module_standin
    module_standin.reset()


def token_response(s, client, client_id=CLIENT, **params) -> requests.Response:
    return client.token(s, data={"grant_type": "client_credentials", "client_id": client_id, **params})


def claims_of(s, client, client_id=CLIENT, **params) -> dict:
    response = token_response(s, client, client_id, **params)
    assert response.status_code == 200, response.text
    jwks = requests.get(f"{s.url}/oauth2/certs", verify=client.ca, timeout=TIMEOUT).json()
    return verify_rs256(response.json()["access_token"], jwks)


# --- each setting, and that it stays with its client ------------------------------------------------


def test_a_schemeless_issuer_is_the_tenant_url_without_https(s, client):
    s.configure_client(CLIENT, schemeless_issuer=True)

    assert claims_of(s, client)["iss"] == s.url.removeprefix("https://")
    assert claims_of(s, client, PLAIN)["iss"] == s.url


def test_an_opaque_token_policy_gives_a_jwt_only_when_asked_for(s, client):
    s.configure_client(CLIENT, opaque_tokens=True)

    opaque = token_response(s, client).json()["access_token"]
    asked = claims_of(s, client, token_format="jwt")

    assert "." not in opaque and len(opaque) >= 32  # a reference, nothing to decode
    assert asked["sub"] == CLIENT
    assert "." in token_response(s, client, PLAIN).json()["access_token"]  # others keep JWTs
    assert [r.token_format for r in s.token_requests] == [None, "jwt", None]


def test_token_format_opaque_is_honoured_and_nonsense_refused(s, client):
    opaque = token_response(s, client, token_format="opaque").json()["access_token"]
    refused = token_response(s, client, token_format="xml")

    assert "." not in opaque
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_request")
    assert "token_format" in refused.json()["error_description"]


def test_unbound_tokens_have_no_cnf(s, client):
    s.configure_client(CLIENT, unbound_tokens=True)

    assert "cnf" not in claims_of(s, client)
    assert claims_of(s, client, PLAIN)["cnf"] == {"x5t#S256": x5t_s256(client.issued["a"].der)}


def test_a_custom_domain_issues_iss_there_and_names_the_tenant_in_ias_iss(s, client):
    s.configure_client(CLIENT, custom_domain=CUSTOM)

    claims = claims_of(s, client)

    assert (claims["iss"], claims["ias_iss"]) == (CUSTOM, s.url)
    assert "ias_iss" not in claims_of(s, client, PLAIN)  # ias_iss marks a custom domain


@pytest.mark.parametrize("setting", [{"custom_domain": CUSTOM}, {"schemeless_issuer": True}])
def test_the_backend_reads_the_issuer_as_sap_libraries_do(s, client, setting):
    s.configure_client(CLIENT, **setting)
    token = token_response(s, client).json()["access_token"]

    hello = client.get(f"{s.backend_url}/hello", token)

    assert hello.status_code == 200, hello.text


def test_app_tid_required_refuses_a_request_without_the_tenants_app_tid(s, client):
    s.configure_client(CLIENT, require_app_tid=True)

    missing = token_response(s, client)
    foreign = token_response(s, client, app_tid="dff69954-a259-4104-9074-193bc9a366ce")
    right = token_response(s, client, app_tid=s.app_tid)

    for refused in (missing, foreign):
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_request")
        assert "app_tid" in refused.json()["error_description"]
    assert right.status_code == 200
    assert jwt_parts(right.json()["access_token"])[1]["app_tid"] == s.app_tid
    thumb = x5t_s256(client.issued["a"].der)
    assert s.token_requests == [
        TokenRequest(CLIENT, thumb, 400),
        TokenRequest(CLIENT, thumb, 400, None, "dff69954-a259-4104-9074-193bc9a366ce"),
        TokenRequest(CLIENT, thumb, 200, None, s.app_tid),
    ]
    assert token_response(s, client, PLAIN).status_code == 200


def test_the_wildcard_client_sets_the_tenant_and_a_clients_own_entry_wins(s, client):
    s.configure_client("*", schemeless_issuer=True)
    s.configure_client(PLAIN, unbound_tokens=True)

    assert claims_of(s, client)["iss"] == s.url.removeprefix("https://")
    plain = claims_of(s, client, PLAIN)
    assert plain["iss"] == s.url and "cnf" not in plain


def test_reset_restores_ias_defaults(s, client):
    s.configure_client(CLIENT, schemeless_issuer=True, unbound_tokens=True, require_app_tid=True)

    s.reset()

    claims = claims_of(s, client)
    assert claims["iss"] == s.url and "cnf" in claims


@pytest.mark.parametrize(
    "bad",
    [
        {"custom_domain": "http://login.example.test"},
        {"custom_domain": "https://login.example.test/tenant"},
        {"custom_domain": "login.example.test"},
        {"schemeless_issuer": "yes"},
    ],
)
def test_settings_refuse_nonsense(s, bad):
    with pytest.raises(ValueError):
        s.configure_client(CLIENT, **bad)


# --- the JWKS endpoint ---------------------------------------------------------------------------------


def test_the_jwks_endpoint_records_sap_headers_and_refuses_a_foreign_app_tid(s, client):
    sent = {"x-app_tid": s.app_tid, "x-client_id": CLIENT, "x-azp": CLIENT}
    ok = requests.get(f"{s.url}/oauth2/certs", headers=sent, verify=client.ca, timeout=TIMEOUT)
    plain = requests.get(f"{s.url}/oauth2/certs", verify=client.ca, timeout=TIMEOUT)
    foreign = requests.get(
        f"{s.url}/oauth2/certs", headers={"x-app_tid": "not-this-tenant"}, verify=client.ca, timeout=TIMEOUT
    )

    assert (ok.status_code, plain.status_code) == (200, 200)
    assert (foreign.status_code, foreign.json()) == (400, {"msg": "Invalid app_tid provided"})
    assert s.jwks_requests == [sent, {}, {"x-app_tid": "not-this-tenant"}]


# --- the OIDC login's tokens ----------------------------------------------------------------------------


@pytest.fixture
def browser(s, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(s.ca_pem)
    b = Browser(s, ca)
    yield b
    b.session.close()


def redeemed(browser) -> dict:
    back, sent = browser.log_on()
    response = browser.redeem(back["code"], sent["verifier"])
    assert response.status_code == 200, response.text
    return response.json()


def test_a_schemeless_tenant_issues_schemeless_id_tokens(s, browser):
    s.configure_client(CLIENT_ID, schemeless_issuer=True)

    claims = verify_rs256(redeemed(browser)["id_token"], browser.jwks())

    assert claims["iss"] == s.url.removeprefix("https://") and "ias_iss" not in claims


def test_a_custom_domain_id_token_names_the_tenant_in_ias_iss_and_logout_still_knows_it(s, browser):
    s.configure_client(CLIENT_ID, custom_domain=CUSTOM)
    s.register_oidc_client(CLIENT_ID, SECRET, [REDIRECT], post_logout_redirect_uris=[REDIRECT])

    body = redeemed(browser)
    claims = verify_rs256(body["id_token"], browser.jwks())
    logout = browser.session.get(
        f"{s.url}/oauth2/logout",
        params={"id_token_hint": body["id_token"], "post_logout_redirect_uri": REDIRECT},
        allow_redirects=False,
        timeout=TIMEOUT,
    )

    assert (claims["iss"], claims["ias_iss"]) == (CUSTOM, s.url)
    assert verify_rs256(body["access_token"], browser.jwks())["ias_iss"] == s.url
    assert logout.status_code == 302 and logout.headers["Location"].startswith(REDIRECT)


def test_an_opaque_policy_gives_an_opaque_access_token_but_a_jwt_id_token(s, browser):
    s.configure_client(CLIENT_ID, opaque_tokens=True)

    body = redeemed(browser)

    assert "." not in body["access_token"]
    assert verify_rs256(body["id_token"], browser.jwks())["aud"] == CLIENT_ID


# --- ./dev run: the settings in the stand-in's directory ----------------------------------------------


def set_in_directory(directory: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "iasstandin.tenant", "--directory", str(directory), *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_the_command_line_sets_a_running_stand_ins_tenant(client, tmp_path):
    with time_machine.travel(certs.MID_LIFE, tick=False), StandIn(directory=tmp_path) as s:
        (tmp_path / "client").mkdir()
        client = Client(tmp_path / "client", s, client.issued)
        s.register(CLIENT, client.issued["a"].pem)
        before = claims_of(s, client)
        done = set_in_directory(tmp_path, "--client", "*", "--schemeless-issuer", "--custom-domain", CUSTOM)
        after = claims_of(s, client)
        (tmp_path / "tenant.json").write_text("{not json")  # a hand edit gone wrong: kept serving
        kept = claims_of(s, client)
        broken = set_in_directory(tmp_path, "--client", CLIENT)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.split(": ", 1)[1]) == {"schemeless_issuer": True, "custom_domain": CUSTOM}
    assert before["iss"] == s.url and "ias_iss" not in before
    assert (after["iss"], after["ias_iss"]) == (CUSTOM, s.url)
    assert kept["iss"] == CUSTOM
    assert broken.returncode == 2 and "tenant.json" in broken.stderr


def test_the_command_line_refuses_a_custom_domain_with_a_path(tmp_path):
    done = set_in_directory(tmp_path, "--client", CLIENT, "--custom-domain", "https://login.example.test/x")

    assert done.returncode == 2 and "without a path" in done.stderr
    assert not (tmp_path / "tenant.json").exists()


def test_defaults_remove_a_clients_entry_from_the_file(tmp_path):
    from iasstandin import set_tenant_settings_in_directory

    set_tenant_settings_in_directory(tmp_path, CLIENT, TenantSettings(unbound_tokens=True))
    set_tenant_settings_in_directory(tmp_path, PLAIN, TenantSettings(opaque_tokens=True))
    set_tenant_settings_in_directory(tmp_path, CLIENT, TenantSettings())

    assert json.loads((tmp_path / "tenant.json").read_text()) == {PLAIN: {"opaque_tokens": True}}
