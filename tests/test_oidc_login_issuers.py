"""Login through IAS when the tenant issues its id_tokens as real tenants may: a schemeless iss, a
custom domain (iss there, ias_iss the tenant), or a custom domain configured in the portal
(CERTMGR_OIDC_ISSUER_ALIASES). Another issuer is still refused. Portal (Django's test client) and
stand-in (real TLS on 127.0.0.1), as in test_oidc_login.py."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from certmgr.core.tokenflow import forget_cached_state
from certmgr.models import AuditEvent, ExternalIdentity
from tests.conftest import log_in_through
from tests.test_oidc_login import CALLBACK, PASSWORD, Person, text_of
from tests.test_settings import _manage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_life")]

LOGIN_ID = "4e8a0c2d-portal-login-issuers"
SECRET = "issuers-login-secret-77a1"
CUSTOM = "https://login.example.test"


@pytest.fixture
def person(client, ias, ias_settings):
    ias.register_oidc_client(LOGIN_ID, SECRET, [CALLBACK])
    ias.add_user("iris", PASSWORD, email="iris@example.com", given_name="Iris", groups=["CertPortalViewers"])
    log_in_through(ias_settings, ias, LOGIN_ID, SECRET)
    ias_settings.CERTMGR_OIDC_ISSUER_ALIASES = []
    forget_cached_state()
    return Person(client, ias)


def assert_logged_in(person, response):
    assert response.status_code == 302, text_of(response)
    assert person.client.get("/").status_code == 200
    identity = ExternalIdentity.objects.get(user__email="iris@example.com")
    assert identity.issuer == person.ias.url  # the tenant, whatever the id_token's iss said


def assert_refused(person, response, *words):
    assert response.status_code == 403
    for word in words:
        assert word in text_of(response)
    assert not get_user_model().objects.filter(email="iris@example.com").exists()
    assert words[0] in AuditEvent.objects.get(action="login_failed").detail


def test_a_tenant_with_a_schemeless_iss_logs_people_in(person, ias):
    ias.configure_client(LOGIN_ID, schemeless_issuer=True)

    assert_logged_in(person, person.log_in("iris"))


def test_a_custom_domain_logs_people_in_through_ias_iss(person, ias):
    ias.configure_client(LOGIN_ID, custom_domain=CUSTOM)

    assert_logged_in(person, person.log_in("iris"))


def test_a_custom_domain_without_ias_iss_needs_the_alias_setting(person, ias, ias_settings):
    ias.faults.id_token_issuer = CUSTOM  # iss only, no ias_iss: the portal cannot tell the tenant

    assert_refused(person, person.log_in("iris"), f"was issued by '{CUSTOM}'", "tenant's own host")

    ias_settings.CERTMGR_OIDC_ISSUER_ALIASES = [CUSTOM]
    assert_logged_in(person, person.log_in("iris"))


@pytest.mark.parametrize(
    ("issuer", "words"),
    [
        ("https://evil.accounts.ondemand.com", "was issued by 'https://evil.accounts.ondemand.com'"),
        ("evil.accounts.ondemand.com", "was issued by 'https://evil.accounts.ondemand.com'"),
        ("{url}/tenant", "has a path"),
        ("https://x.login.example.test", "configured issuer https://login.example.test"),
    ],
)
def test_another_issuer_is_still_refused(person, ias, ias_settings, issuer, words):
    ias_settings.CERTMGR_OIDC_ISSUER_ALIASES = [CUSTOM]
    ias.faults.id_token_issuer = issuer.format(url=ias.url)

    assert_refused(person, person.log_in("iris"), words)
    assert AuditEvent.objects.get(action="login_failed").detail.startswith("The id_token")


def test_the_code_exchange_asks_for_a_jwt_and_the_jwks_request_names_the_portal(person, ias):
    assert_logged_in(person, person.log_in("iris"))

    [exchange] = [r for r in ias.token_requests if r.client_id == LOGIN_ID]
    assert (exchange.status, exchange.token_format) == (200, "jwt")
    assert ias.jwks_requests == [{"x-app_tid": ias.app_tid, "x-client_id": LOGIN_ID, "x-azp": LOGIN_ID}]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("login.example.test", "'login.example.test' is not an https URL"),
        ("https://login.example.test/tenant", "has a path"),
        ("https://login.example.test, https://a b.example", "whitespace"),
    ],
)
def test_an_alias_that_is_not_an_issuer_url_stops_the_start(tmp_path, value, said):
    result = _manage(
        "check", DJANGO_DEBUG="1", CERTMGR_LOCAL_DIR=str(tmp_path), CERTMGR_OIDC_ISSUER_ALIASES=value
    )

    assert result.returncode != 0
    assert "CERTMGR_OIDC_ISSUER_ALIASES" in result.stderr and said in result.stderr


def test_aliases_are_read_with_a_trailing_slash_dropped(tmp_path):
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.CERTMGR_OIDC_ISSUER_ALIASES)",
        DJANGO_DEBUG="1",
        CERTMGR_LOCAL_DIR=str(tmp_path),
        CERTMGR_OIDC_ISSUER_ALIASES="https://login.example.test/, https://id.example.org",
    )

    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip().splitlines()[-1] == "['https://login.example.test', 'https://id.example.org']"
    )
