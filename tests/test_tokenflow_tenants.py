"""The token-flow health check against tenants set up as real IAS tenants may be (issue 11).

Each tenant setting of the stand-in (iasstandin/tenant.py) is legal IAS behaviour: the check must
come out healthy for it, and still fail for what is really wrong. Over real TLS on 127.0.0.1.
"""

from __future__ import annotations

import pytest

from certmgr.core import tokencheck
from certmgr.core.tokenflow import TokenFlowOptions, run_token_flow
from tests import certs
from tests.test_tokenflow import assert_failed_at, flow_request, policy, x5t_s256

CLIENT = "6c1d9e4a-fidelity-check"
OTHER_CLIENT = "1f7b2a90-fidelity-other"
CUSTOM = "https://login.example.test"
UNBOUND = "the token is not bound to the certificate (no cnf claim)"

pytestmark = pytest.mark.usefixtures("mid_life")


@pytest.fixture(scope="module")
def cert():
    return certs.issue("fidelity-check (P000411)", key_slot=41, serial=0x4141)


@pytest.fixture(scope="module")
def stranger():
    return certs.issue("fidelity-stranger (P000412)", key_slot=42, serial=0x4242)


@pytest.fixture
def registered(ias, cert):
    ias.register(CLIENT, cert.pem)
    ias.register(OTHER_CLIENT, cert.pem)
    yield cert
    ias.unregister(CLIENT)
    ias.unregister(OTHER_CLIENT)


def run(ias, item, **changes):
    request = flow_request(ias, item, client_id=CLIENT, **changes)
    return run_token_flow(request, TokenFlowOptions(policy=policy(ias)))


def assert_every_token_request_asked_for_a_jwt(ias):
    assert ias.token_requests, "no token request reached the stand-in"
    assert [r.token_format for r in ias.token_requests] == ["jwt"] * len(ias.token_requests)


# --- each tenant setting gives a healthy check ----------------------------------------------------------


def test_a_tenant_issuing_a_schemeless_iss_is_healthy(ias, registered):
    ias.configure_client(CLIENT, schemeless_issuer=True)

    result = run(ias, registered)

    assert result.ok is True, result.failed_step
    assert result.claims["iss"] == ias.url.removeprefix("https://")
    assert result.step("token_validation").warnings == ()
    assert_every_token_request_asked_for_a_jwt(ias)


def test_an_opaque_token_policy_is_healthy_because_the_check_asks_for_a_jwt(ias, registered):
    ias.configure_client(CLIENT, opaque_tokens=True)

    result = run(ias, registered)

    assert result.ok is True, result.failed_step
    assert_every_token_request_asked_for_a_jwt(ias)


def test_an_unbound_token_is_healthy_with_a_warning(ias, registered):
    ias.configure_client(CLIENT, unbound_tokens=True)

    result = run(ias, registered)

    validation = result.step("token_validation")
    assert result.ok is True and result.failed_step is None
    assert (validation.ok, validation.code, validation.warnings) == (True, "ok", (UNBOUND,))
    assert validation.to_dict()["warnings"] == [UNBOUND]
    assert "certificate binding" not in validation.diagnosis
    assert "cnf" not in result.claims
    assert [step.warnings for step in result.steps if step.name != "token_validation"] == [()] * 3
    assert_every_token_request_asked_for_a_jwt(ias)


def test_a_custom_domain_is_healthy_the_tenant_is_read_from_ias_iss(ias, registered):
    ias.configure_client(CLIENT, custom_domain=CUSTOM)

    result = run(ias, registered)

    assert result.ok is True, result.failed_step
    assert (result.claims["iss"], result.claims["ias_iss"]) == (CUSTOM, ias.url)
    assert_every_token_request_asked_for_a_jwt(ias)


def test_a_tenant_requiring_app_tid_is_healthy_when_the_binding_names_it(ias, registered):
    ias.configure_client(CLIENT, require_app_tid=True)

    result = run(ias, registered, app_tid=ias.app_tid)

    assert result.ok is True, result.failed_step
    assert [r.app_tid for r in ias.token_requests] == [ias.app_tid]
    assert_every_token_request_asked_for_a_jwt(ias)


def test_without_the_app_tid_such_a_tenant_refuses_the_token_request(ias, registered):
    ias.configure_client(CLIENT, require_app_tid=True)

    result = run(ias, registered)

    step = assert_failed_at(result, "token", "invalid_request", "app_tid")
    assert step.status == 400
    assert [r.app_tid for r in ias.token_requests] == [None]


# --- what is really wrong still fails at token_validation ---------------------------------------------


@pytest.mark.parametrize(
    ("fault", "value", "code", "words"),
    [
        ("sign_with_unknown_key", True, "unknown_kid", ["does not publish"]),
        ("sign_with_wrong_key_same_kid", True, "bad_signature", ["signature does not verify"]),
        ("audience", OTHER_CLIENT, "wrong_audience", [OTHER_CLIENT, CLIENT]),
        ("issuer", "https://a.b.accounts.ondemand.com", "wrong_issuer", ["a.b.accounts.ondemand.com"]),
        (
            "issuer",
            "https://accounts.ondemand.com",
            "wrong_issuer",
            ["one label under accounts.ondemand.com"],
        ),
        ("issuer", "{url}/oauth2", "wrong_issuer", ["has a path"]),
        ("issuer", "{url}/", "wrong_issuer", ["has a path"]),
        ("issuer", "{url}?tenant=x", "wrong_issuer", ["has a query"]),
        ("issuer", "http://{host}", "wrong_issuer", ["not an https URL"]),
        ("issuer", "https://127.0.0.1:1", "wrong_issuer", ["tenant's own host"]),
    ],
    ids=lambda v: v if isinstance(v, str) and not v.startswith(("{", "http")) else None,
)
def test_what_sap_libraries_refuse_still_fails_token_validation(ias, registered, fault, value, code, words):
    if isinstance(value, str):
        value = value.format(url=ias.url, host=ias.url.removeprefix("https://"))
    setattr(ias.faults, fault, value)

    result = run(ias, registered, trusted_domains=("accounts.ondemand.com",))

    assert_failed_at(result, "token_validation", code, *words)
    assert_every_token_request_asked_for_a_jwt(ias)


def test_a_token_bound_to_another_certificate_still_fails_as_binding_mismatch(ias, registered, stranger):
    ias.configure_client(CLIENT, unbound_tokens=True)  # a fault's cnf wins over the setting
    ias.faults.cnf_thumbprint = x5t_s256(stranger.der)

    result = run(ias, registered)

    step = assert_failed_at(result, "token_validation", "binding_mismatch", x5t_s256(stranger.der))
    assert step.warnings == ()


def test_an_issuer_one_label_under_a_trusted_domain_is_accepted_with_or_without_scheme(ias, registered):
    for issuer in ("https://mytenant.accounts.ondemand.com", "mytenant.accounts.ondemand.com"):
        ias.faults.issuer = issuer

        # No backend: the stand-in's would rightly refuse a token from another tenant.
        result = run(ias, registered, trusted_domains=("accounts.ondemand.com",), backend_url="")

        assert result.ok is True, (issuer, result.failed_step)


# --- the JWKS request, as SAP's libraries make it -----------------------------------------------------


def test_the_jwks_request_names_tenant_client_and_authorized_party(ias, registered):
    result = run(ias, registered)

    assert result.ok is True
    assert ias.jwks_requests == [{"x-app_tid": ias.app_tid, "x-client_id": CLIENT, "x-azp": CLIENT}]


def test_the_jwks_is_cached_per_client_not_shared_between_them(ias, registered):
    first = run(ias, registered)
    other = run_token_flow(
        flow_request(ias, registered, client_id=OTHER_CLIENT), TokenFlowOptions(policy=policy(ias))
    )
    again = run(ias, registered)

    assert first.ok and other.ok and again.ok
    assert [r["x-client_id"] for r in ias.jwks_requests] == [CLIENT, OTHER_CLIENT]


def test_the_jwks_cache_stays_bounded_whatever_tokens_claim(ias, registered):
    jwks_uri = f"{ias.url}/oauth2/certs"
    for n in range(tokencheck.JWKS_CACHE_ENTRIES + 10):
        tokencheck.jwks_key(jwks_uri, ias.pki.kid, policy(ias), {"x-azp": f"azp-{n}"})

    assert len(tokencheck._jwks) == tokencheck.JWKS_CACHE_ENTRIES
    assert len(ias.jwks_requests) == tokencheck.JWKS_CACHE_ENTRIES + 10
