"""The Django-free CF client (certmgr/core/cfapi.py, cflandscape.py) against the stand-in: where
the token may go, loops the API controls are bounded, and no secret ends up in an error or a repr."""

from __future__ import annotations

import pytest

from certmgr.core import cfapi, cflandscape
from certmgr.core.cfapi import CfConfig, CfError, login_host_allowed
from certmgr.core.cflandscape import identity_credentials, read_landscape
from certmgr.core.outbound import HttpPolicy
from iasstandin.cfapi import World
from tests.cfworld import PASSWORD, credentials, instance, world


@pytest.fixture
def api(cloud_foundry):
    cloud_foundry.reset()
    cloud_foundry.world = World.from_dict(world())
    yield cloud_foundry
    cloud_foundry.reset()


def read(api, **config):
    policy = HttpPolicy(ca_bundle=str(api.ca_file), connect_timeout=2, read_timeout=2)
    return read_landscape(CfConfig(api.url, "scanner", PASSWORD, **config), policy)


@pytest.mark.parametrize(
    ("login", "api_url", "extra", "allowed"),
    [
        ("https://login.cf.eu10.hana.ondemand.com", "https://api.cf.eu10.hana.ondemand.com", (), True),
        ("https://uaa.cf.eu10.hana.ondemand.com", "https://api.cf.eu10.hana.ondemand.com", (), True),
        ("https://api.cf.eu10.hana.ondemand.com:8443", "https://api.cf.eu10.hana.ondemand.com", (), True),
        ("https://login.cf.us10.hana.ondemand.com", "https://api.cf.eu10.hana.ondemand.com", (), False),
        ("https://a.login.cf.eu10.hana.ondemand.com", "https://api.cf.eu10.hana.ondemand.com", (), False),
        ("https://evil.example", "https://api.cf.eu10.hana.ondemand.com", (), False),
        ("https://login.example.com", "https://api.example.com", (), True),
        ("https://evil.com", "https://api.com", (), False),  # "com" is no parent domain of its own
        ("https://login.sso.example", "https://api.cf.example.org", ("login.sso.example",), True),
        ("https://x.sso.example", "https://api.cf.example.org", ("*.sso.example",), True),
        ("https://127.0.0.1:8446", "https://127.0.0.1:8445", (), True),  # the same host, another port
        ("https://127.0.0.2", "https://127.0.0.1", (), False),
    ],
)
def test_the_login_server_must_be_the_apis_sibling_or_listed(login, api_url, extra, allowed):
    assert login_host_allowed(login, api_url, extra) is allowed


def test_a_next_page_on_another_host_is_not_followed_and_gets_no_token(api):
    api.faults.max_per_page = 2
    api.faults.next_href = "https://127.0.0.2:1/v3/service_instances?page=2"

    with pytest.raises(
        CfError, match="The next page of /v3/service_instances is not on https://127.0.0.1"
    ) as err:
        read(api)

    assert err.value.code == CfError.HOST


def test_a_pagination_that_loops_is_stopped(api):
    api.faults.max_per_page = 2
    api.faults.next_href = api.url + "/v3/service_instances?page=1&per_page=2"

    with pytest.raises(CfError, match="leads back to a page already read"):
        read(api)
    assert len([c for c in api.calls if c.path == "/v3/service_instances"]) <= 3


def test_pages_and_bindings_are_bounded(api, monkeypatch):
    api.faults.max_per_page = 1
    monkeypatch.setattr(cfapi, "MAX_PAGES", 4)
    with pytest.raises(CfError, match="more than 4 pages") as err:
        read(api)
    assert err.value.code == CfError.TOO_MANY

    api.faults.max_per_page = 5000
    monkeypatch.setattr(cflandscape, "MAX_BINDINGS", 2)
    with pytest.raises(CfError, match="More than 2 identity bindings"):
        read(api)


def test_bindings_being_created_are_counted_not_read(api):
    pending = {"type": "key", "name": "half-made", "credentials": credentials("SECRET")}
    pending["last_operation"] = {"type": "create", "state": "in progress"}
    api.world = World.from_dict(world(extra_instances=[instance("new-ias", "acme/dev", [pending])]))

    landscape = read(api)

    assert landscape.pending == 1
    assert "half-made" not in [b.name for b in landscape.bindings]
    assert not [c for c in api.calls if c.path.endswith("/details") and c.status == 404]


def test_no_secret_reaches_an_error_or_a_repr(api):
    config = CfConfig(api.url, "scanner", "a-password-nobody-may-see", client_secret="and-a-secret")
    with pytest.raises(CfError) as err:
        read_landscape(config, HttpPolicy(ca_bundle=str(api.ca_file)))
    assert "a-password-nobody-may-see" not in str(err.value) + repr(err.value) + repr(config)
    assert "and-a-secret" not in repr(config)

    generated = read(api, keep_keys=True).bindings[1].credentials
    assert generated.credential_type == "X509_GENERATED" and generated.key
    assert "PRIVATE KEY" not in repr(generated)
    assert read(api).bindings[1].credentials.key is None  # not kept unless asked for


def test_the_credential_type_is_inferred_when_the_binding_does_not_say(api):
    def kind(raw: dict) -> str:
        return identity_credentials(raw, keep_key=False).credential_type

    assert kind({"certificate": "PEM", "key": "KEY"}) == "X509_GENERATED"
    assert kind({"certificate": "PEM"}) == "X509_PROVIDED"
    assert kind({"clientsecret": "s"}) == "SECRET"
    assert kind({"clientid": "c"}) == "NONE"
    assert kind({"credential-type": "X509_ATTESTED"}) == "X509_ATTESTED"
    assert kind({"credential-type": "<script>", "clientsecret": "s"}) == "SECRET"


def test_an_api_url_that_is_not_https_is_refused_before_anything_is_sent(api):
    with pytest.raises(CfError, match="must be an https URL") as err:
        read_landscape(
            CfConfig("http://127.0.0.1:1", "scanner", PASSWORD), HttpPolicy(allow_http_loopback=True)
        )
    assert err.value.code == CfError.CONFIG
