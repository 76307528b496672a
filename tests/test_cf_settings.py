"""The landscape's configuration is checked at startup (manage.py check), each mistake named with a hint."""

from __future__ import annotations

import pytest

from certmgr import checks

API = "https://api.cf.eu10.hana.ondemand.com"
USER = {"CERTMGR_CF_USERNAME": "scanner", "CERTMGR_CF_PASSWORD": "secret"}
CLIENT = {"CERTMGR_CF_CLIENT_ID": "portal", "CERTMGR_CF_CLIENT_SECRET": "secret"}


@pytest.fixture
def configure(settings):
    def _configure(**values) -> list[str]:
        for name in checks._CF_SETTINGS:
            setattr(settings, name, [] if name.endswith(("ORGS", "SPACES", "HOSTS")) else "")
        settings.CERTMGR_CF_API, settings.CERTMGR_CF_SYNC_MINUTES = "", 60
        for name, value in values.items():
            setattr(settings, name, value)
        return [f"{issue.id}: {issue.msg}" for issue in checks.cloud_foundry(None)]

    return _configure


def test_nothing_configured_is_fine(configure):
    assert configure() == []


def test_a_user_or_a_client_with_an_https_api_is_fine(configure):
    assert configure(CERTMGR_CF_API=API, **USER) == []
    assert (
        configure(CERTMGR_CF_API=API, CERTMGR_CF_ORGS=["acme"], CERTMGR_CF_HOSTS=["*.sso.example"], **CLIENT)
        == []
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (USER, "certmgr.W030: CERTMGR_CF_USERNAME, CERTMGR_CF_PASSWORD set, but CERTMGR_CF_API is not"),
        (
            {"CERTMGR_CF_API": "http://api.example.com", **USER},
            "certmgr.E031: CERTMGR_CF_API=http://api.example.com",
        ),
        ({"CERTMGR_CF_API": API + "/v3", **USER}, "certmgr.E031"),
        (
            {"CERTMGR_CF_API": API, **USER, **CLIENT},
            "certmgr.E032: The Cloud Foundry login is unclear: both a user",
        ),
        (
            {"CERTMGR_CF_API": API, "CERTMGR_CF_USERNAME": "scanner"},
            "certmgr.E032: The Cloud Foundry login is unclear: CERTMGR_CF_USERNAME and CERTMGR_CF_PASSWORD go together",
        ),
        ({"CERTMGR_CF_API": API}, "certmgr.E032: The Cloud Foundry login is unclear: no credentials are set"),
        ({"CERTMGR_CF_API": API, "CERTMGR_CF_SYNC_MINUTES": 1, **USER}, "certmgr.E033"),
        ({"CERTMGR_CF_API": API, "CERTMGR_CF_HOSTS": ["https://login.example.com"], **USER}, "certmgr.E034"),
    ],
)
def test_each_mistake_is_named(configure, values, expected):
    [issue] = configure(**values)
    assert issue.startswith(expected)


def test_secrets_are_not_in_the_messages(configure):
    issues = configure(
        CERTMGR_CF_API="http://x",
        CERTMGR_CF_PASSWORD="hunter2-password",
        CERTMGR_CF_CLIENT_ID="portal",
        CERTMGR_CF_CLIENT_SECRET="hunter3-client-secret",
    )
    assert len(issues) == 2
    assert not [issue for issue in issues if "hunter" in issue]
