"""The Cloud Foundry the landscape tests scan: a stand-in (iasstandin.cfapi) over real TLS on
127.0.0.1, and a world of orgs, spaces, apps, identity/xsuaa/destination instances and bindings
whose certificates come from tests/certs.py. conftest loads this module as a plugin (the fixtures)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from iasstandin.cfapi import CloudFoundry, World
from tests import certs

TENANT = "https://mytenant.accounts.ondemand.com"  # the tenant of conftest's 'frontend'
FRONTEND_CLIENT = "5fd2be25-0e09-4321-8817-4a7b11a2ace2"
FOUND_CLIENT = "9a3e6c1d-2b4f-4e8a-b7c6-0d1e2f3a4b5c"  # an IAS application the portal does not know yet
PASSWORD = "scanner-pass-123"
FILLER_INSTANCES = 7  # identity instances without bindings, so the list spans pages

# What the bindings hold: the certificate 'frontend' uses, an X509_GENERATED one someone made for a
# test (with its key), and one of an application nobody entered in the portal.
PROVIDED = certs.issue("frontend-app (P000042)", key_slot=3, serial=0x7001)
GENERATED = certs.issue(
    "frontend-generated", key_slot=4, serial=0x7002, not_after=certs.EXPIRES + timedelta(days=30)
)
FOUND = certs.issue("found-app (P000077)", key_slot=5, serial=0x7003)
IGNORED = certs.issue("xsuaa-binding", key_slot=6, serial=0x7004)


def credentials(kind: str, item=None, *, client_id: str = FRONTEND_CLIENT, tenant: str = TENANT) -> dict:
    """An identity binding's credentials as IAS puts them there (SAP-docs/btp-cloud-identity-services)."""
    found = {
        "clientid": client_id,
        "url": tenant,
        "domains": ["accounts.ondemand.com", "accounts.cloud.sap"],
        "credential-type": kind,
        "app_tid": "2c1a9b4e-7d3f-4e2a-9b8c-1d2e3f4a5b6c",
    }
    if kind == "SECRET":
        found["clientsecret"] = "the-client-secret-of-the-binding"
    if item is not None:
        found["certificate"] = item.pem.decode("ascii")
        found["certificate_expires_at"] = item.not_after.isoformat()
    if kind == "X509_GENERATED":
        found["key"] = item.key_pem("traditional").decode("ascii")
    return found


def instance(name: str, space: str, bindings: list[dict], offering: str = "identity") -> dict:
    return {"name": name, "space": space, "offering": offering, "plan": "application", "bindings": bindings}


def world(
    frontend_holds=PROVIDED, *, frontend_binding: str | None = None, extra_instances: list[dict] = ()
) -> dict:
    """``frontend_holds``: the certificate of the frontend app's binding (or its credentials, a dict);
    ``frontend_binding``: that binding's name (a new binding after a rotation has a new guid)."""
    held = (
        frontend_holds if isinstance(frontend_holds, dict) else credentials("X509_PROVIDED", frontend_holds)
    )
    apps = ["frontend", "backend", "login"]
    return {
        "organizations": [
            {"name": "acme", "spaces": [{"name": "dev", "apps": apps}, {"name": "prod", "apps": apps}]},
            {"name": "labs", "spaces": [{"name": "sandbox", "apps": ["experiment"]}]},
        ],
        "service_offerings": [
            {"name": "identity", "plans": ["application"]},
            {"name": "xsuaa", "plans": ["application"]},
            {"name": "destination", "plans": ["lite"]},
        ],
        "service_instances": [
            instance(
                "frontend-ias",
                "acme/dev",
                [
                    {
                        "type": "app",
                        "app": "frontend",
                        "name": frontend_binding,
                        "credentials": held,
                    },
                    {
                        "type": "key",
                        "name": "test-key",
                        "credentials": credentials("X509_GENERATED", GENERATED),
                    },
                ],
            ),
            instance(
                "login-ias",
                "acme/prod",
                [
                    {
                        "type": "app",
                        "app": "login",
                        "credentials": credentials("SECRET", client_id="login-client"),
                    }
                ],
            ),
            instance(
                "found-ias",
                "labs/sandbox",
                [
                    {
                        "type": "key",
                        "name": "k1",
                        "credentials": credentials("X509_PROVIDED", FOUND, client_id=FOUND_CLIENT),
                    }
                ],
            ),
            instance(
                "frontend-xsuaa",
                "acme/dev",
                [
                    {
                        "type": "app",
                        "app": "frontend",
                        "credentials": credentials("X509_PROVIDED", IGNORED, client_id="sb-x"),
                    }
                ],
                offering="xsuaa",
            ),
            {"name": "dest", "space": "acme/dev", "offering": "destination", "plan": "lite", "bindings": []},
            *[instance(f"idle-ias-{n}", "labs/sandbox", []) for n in range(FILLER_INSTANCES)],
            *extra_instances,
        ],
        "users": [
            {"username": "scanner", "password": PASSWORD, "role": "admin_read_only"},
            {"username": "auditor", "password": PASSWORD, "role": "space_auditor", "spaces": ["acme/dev"]},
        ],
        "clients": [{"client_id": "portal-scanner", "client_secret": PASSWORD, "role": "admin_read_only"}],
    }


@pytest.fixture(scope="session")
def cloud_foundry(tmp_path_factory):
    with CloudFoundry(world()) as running:
        running.ca_file = tmp_path_factory.mktemp("cfapi") / "ca.pem"
        running.ca_file.write_bytes(running.pki.ca_pem)
        yield running


@pytest.fixture
def cf(cloud_foundry, settings, mid_life):
    """The stand-in with the standard world, and the portal configured to read it as 'scanner'."""
    cloud_foundry.reset()
    cloud_foundry.world = World.from_dict(world())
    settings.CERTMGR_CF_API = cloud_foundry.url
    settings.CERTMGR_CF_USERNAME, settings.CERTMGR_CF_PASSWORD = "scanner", PASSWORD
    settings.CERTMGR_CF_CLIENT_ID = settings.CERTMGR_CF_CLIENT_SECRET = ""
    settings.CERTMGR_CF_ORGS, settings.CERTMGR_CF_SPACES, settings.CERTMGR_CF_HOSTS = [], [], []
    settings.CERTMGR_CF_STORE_KEYS = False
    settings.CERTMGR_CA_BUNDLE = str(cloud_foundry.ca_file)
    settings.CERTMGR_HEALTHCHECK_CONNECT_TIMEOUT = settings.CERTMGR_HEALTHCHECK_READ_TIMEOUT = 2
    yield cloud_foundry
    cloud_foundry.reset()


def v3_calls(cf) -> list:
    return [call for call in cf.calls if call.server == "api" and call.path.startswith("/v3")]
