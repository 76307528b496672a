"""The issuer rule of SAP's libraries (certmgr.core.tokencheck.trusted_issuer), case by case.

Java JwtIssuerValidator, Go matchesDomain and Python sap-xssec agree: ias_iss before iss, https://
added to a schemeless issuer, the host exactly one label under a trusted domain, nothing after it.
The tenant URL's own host stands in for loopback tenants. The health check and the login share it.
"""

from __future__ import annotations

import pytest

from certmgr.core.tokencheck import StepFailed, trusted_issuer

DOMAINS = ("accounts.ondemand.com", "accounts.cloud.sap")
TENANT = "https://mytenant.accounts.ondemand.com"
LOOPBACK = "https://127.0.0.1:8443"


@pytest.mark.parametrize(
    ("claims", "tenant", "expected"),
    [
        ({"iss": "https://mytenant.accounts.ondemand.com"}, TENANT, "https://mytenant.accounts.ondemand.com"),
        ({"iss": "mytenant.accounts.ondemand.com"}, TENANT, "https://mytenant.accounts.ondemand.com"),
        ({"iss": "https://other-tenant.accounts.cloud.sap"}, TENANT, "https://other-tenant.accounts.cloud.sap"),
        ({"iss": "https://MyTenant.Accounts.OnDemand.com"}, TENANT, "https://MyTenant.Accounts.OnDemand.com"),
        ({"iss": "https://" + "a" * 63 + ".accounts.ondemand.com"}, TENANT, "https://" + "a" * 63 + ".accounts.ondemand.com"),
        (
            {"iss": "https://login.example.com", "ias_iss": "mytenant.accounts.ondemand.com"},
            TENANT,
            "https://mytenant.accounts.ondemand.com",
        ),
        ({"iss": "https://127.0.0.1:8443"}, LOOPBACK, "https://127.0.0.1:8443"),
        ({"iss": "127.0.0.1:8443"}, LOOPBACK, "https://127.0.0.1:8443"),
        ({"iss": "https://mytenant.accounts.ondemand.com", "ias_iss": ""}, TENANT, "https://mytenant.accounts.ondemand.com"),
    ],
)  # fmt: skip
def test_these_issuers_are_trusted(claims, tenant, expected):
    assert trusted_issuer(claims, DOMAINS, tenant) == expected


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({}, "missing"),
        ({"iss": 42}, "not a string"),
        ({"iss": "https://a.b.accounts.ondemand.com"}, "one label under accounts.ondemand.com"),
        ({"iss": "https://accounts.ondemand.com"}, "which is not"),
        ({"iss": "https://" + "a" * 64 + ".accounts.ondemand.com"}, "which is not"),
        ({"iss": "https://evilaccounts.ondemand.com"}, "which is not"),
        ({"iss": "https://mytenant.accounts.ondemand.com.evil.example"}, "which is not"),
        ({"iss": "https://mytenant_x.accounts.ondemand.com"}, "which is not"),
        ({"iss": "https://mytenant.accounts.ondemand.com:443"}, "which is not"),
        ({"iss": "https://mytenant.accounts.ondemand.com/"}, "has a path"),
        ({"iss": "https://mytenant.accounts.ondemand.com/oauth2"}, "has a path"),
        ({"iss": "mytenant.accounts.ondemand.com/x"}, "has a path"),
        ({"iss": "https://mytenant.accounts.ondemand.com?x=1"}, "has a query"),
        ({"iss": "https://mytenant.accounts.ondemand.com#x"}, "has a fragment"),
        ({"iss": "https://evil.example@mytenant.accounts.ondemand.com"}, "userinfo"),
        ({"iss": "https://mytenant%2Eaccounts.ondemand.com"}, "%-encoding"),
        ({"iss": "https://mytenant.accounts.ondemand.com\n"}, "control characters"),
        ({"iss": "https://mytenant.accounts.ondemand.com\t"}, "control characters"),
        ({"iss": "https://my tenant.accounts.ondemand.com"}, "whitespace"),
        ({"iss": "https://mytenant.accounts.ondemand.com\u200b"}, "control characters"),
        ({"iss": "https://\u212aelvin.accounts.ondemand.com"}, "non-ASCII"),  # Kelvin sign, "k" lowered
        ({"iss": "https://mytenant.accountſ.ondemand.com"}, "non-ASCII"),  # long s, "s" ignoring case
        ({"iss": "https://tënant.accounts.ondemand.com"}, "non-ASCII"),
        ({"iss": "http://mytenant.accounts.ondemand.com"}, "not an https URL"),
        ({"iss": "HTTPS://mytenant.accounts.ondemand.com"}, "not an https URL"),
        ({"iss": "https://"}, "not a host name"),
        ({"iss": "https://mytenant.accounts.ondemand.com\\x"}, "not a host name"),
        ({"iss": "https://" + "a" * 3000}, "longer than"),
        # ias_iss names the tenant when present: a good iss does not save a foreign ias_iss.
        ({"iss": TENANT, "ias_iss": "https://evil.example.com"}, "(ias_iss)"),
    ],
)
def test_these_issuers_are_refused_as_wrong_issuer(claims, words):
    with pytest.raises(StepFailed) as refused:
        trusted_issuer(claims, DOMAINS, TENANT)

    assert refused.value.code == "wrong_issuer"
    assert words in refused.value.diagnosis
    assert "\n" not in refused.value.diagnosis and len(refused.value.diagnosis) < 500


def test_the_tenants_own_host_counts_only_with_its_port():
    assert trusted_issuer({"iss": "https://127.0.0.1:8443"}, (), LOOPBACK)
    for other in ("https://127.0.0.1:8444", "https://127.0.0.1", "https://localhost:8443"):
        with pytest.raises(StepFailed, match="tenant's own host 127.0.0.1:8443"):
            trusted_issuer({"iss": other}, (), LOOPBACK)


def test_an_alias_is_accepted_exactly_and_nothing_near_it():
    aliases = ("https://login.example.com",)

    assert trusted_issuer({"iss": "login.example.com"}, (), TENANT, aliases=aliases)
    assert trusted_issuer({"iss": "https://LOGIN.example.com"}, (), TENANT, aliases=aliases)
    for near in ("https://x.login.example.com", "https://login.example.com/", "https://login.example.co"):
        with pytest.raises(StepFailed) as refused:
            trusted_issuer({"iss": near}, (), TENANT, aliases=aliases)
        assert refused.value.code == "wrong_issuer" and near in refused.value.diagnosis


def test_garbage_trusted_domains_are_skipped_not_raised_on():
    domains = (None, 42, "", "  ", "accounts.ondemand.com")

    assert trusted_issuer({"iss": TENANT}, domains, "https://elsewhere.example")
    with pytest.raises(StepFailed):
        trusted_issuer({"iss": "https://x.example"}, (None, 42), "https://elsewhere.example")
