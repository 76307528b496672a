"""`cf_sync` against the Cloud Foundry stand-in over real TLS: every identity binding and service
key found (across pages, narrowed by org and space), other offerings ignored, certificates stored
through the importer in the application of their tenant and client id, a second run the same."""

from __future__ import annotations

import json
from io import StringIO
from urllib.parse import parse_qs

import pytest
from django.core.management import CommandError, call_command

from certmgr.inventory.keys import read_private_key
from certmgr.models import Application, AuditEvent, Binding, Certificate, DiscoveredApplication, Foundry
from iasstandin.cfapi import World
from tests.cfworld import (
    FILLER_INSTANCES,
    FOUND,
    FOUND_CLIENT,
    GENERATED,
    IGNORED,
    PROVIDED,
    credentials,
    instance,
    v3_calls,
    world,
)

pytestmark = pytest.mark.django_db


def sync_json(*args) -> list[dict]:
    out = StringIO()
    call_command("cf_sync", "--json", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def by_holder(lines: list[dict]) -> dict[str, dict]:
    return {line["app"] or line["binding"]: line for line in lines}


def counts() -> dict[str, int]:
    models = (Application, Certificate, Binding, AuditEvent, DiscoveredApplication, Foundry)
    return {model.__name__: model.objects.count() for model in models}


def test_every_identity_binding_and_key_is_one_json_line(cf, frontend_app):
    lines = sync_json()

    assert [(line["space"], line["instance"], line["type"]) for line in lines] == [
        ("acme/dev", "frontend-ias", "app"),
        ("acme/dev", "frontend-ias", "key"),
        ("acme/prod", "login-ias", "app"),
        ("labs/sandbox", "found-ias", "key"),
    ]
    assert by_holder(lines)["frontend"] == {
        "binding": None,
        "guid": lines[0]["guid"],
        "type": "app",
        "instance": "frontend-ias",
        "space": "acme/dev",
        "app": "frontend",
        "credential_type": "X509_PROVIDED",
        "fingerprint": PROVIDED.fingerprint,
        "not_after": "2027-01-15T09:00:00+00:00",
        "application": "frontend",
        "status": "active",
    }


def test_other_offerings_are_ignored_even_when_their_bindings_hold_certificates(cf, frontend_app):
    sync_json()

    assert not Certificate.objects.filter(fingerprint=IGNORED.fingerprint).exists()
    assert Binding.objects.filter(instance_name__in=["frontend-xsuaa", "dest"]).count() == 0
    xsuaa = cf.world.bindings[-1]
    assert xsuaa.credentials["clientid"] == "sb-x"
    assert not [call for call in cf.calls if xsuaa.guid in call.path]  # its credentials never read


def test_the_instances_are_followed_across_pages(cf, frontend_app):
    cf.faults.max_per_page = 2  # the server caps the page, as Cloud Controller does at 5000

    lines = sync_json()

    instance_pages = [c for c in v3_calls(cf) if c.path == "/v3/service_instances"]
    identity_instances = 3 + FILLER_INSTANCES
    assert len(instance_pages) == identity_instances // 2  # 2 a page
    assert [parse_qs(c.query).get("page") for c in instance_pages] == [None, ["2"], ["3"], ["4"], ["5"]]
    assert len(lines) == 4 and lines[-1]["instance"] == "found-ias"  # on the last page


def test_orgs_and_spaces_narrow_the_scan(cf, frontend_app, settings):
    settings.CERTMGR_CF_ORGS, settings.CERTMGR_CF_SPACES = ["acme"], ["dev"]

    lines = sync_json()

    assert {line["space"] for line in lines} == {"acme/dev"}
    [query] = [c.query for c in v3_calls(cf) if c.path == "/v3/service_instances"]
    world = cf.world
    acme = next(o for o in world.orgs if o.name == "acme")
    dev = next(s for s in world.spaces if s.name == "dev")
    assert f"organization_guids={acme.guid}" in query and f"space_guids={dev.guid}" in query


def test_an_organization_the_user_cannot_see_is_a_named_error(cf, settings):
    settings.CERTMGR_CF_ORGS = ["acme", "umbrella"]

    with pytest.raises(
        CommandError, match="CERTMGR_CF_ORGS: no organization named umbrella is visible"
    ) as err:
        sync_json()

    assert err.value.returncode == 4


def test_a_secret_binding_is_recorded_without_a_certificate(cf, frontend_app):
    line = by_holder(sync_json())["login"]

    assert (line["credential_type"], line["fingerprint"], line["status"], line["application"]) == (
        "SECRET", None, "none", None,
    )  # fmt: skip
    row = Binding.objects.get(app_name="login")
    assert (row.certificate, row.fingerprint, row.client_id) == (None, "", "login-client")
    assert not Application.objects.filter(client_id="login-client").exists()  # no certificate, no application
    assert "the-client-secret" not in json.dumps(list(Binding.objects.values()), default=str)


def test_a_generated_key_is_imported_into_the_application_of_its_tenant_and_client_id(cf, frontend_app):
    frontend_app.tenant_url = "https://mytenant.accounts.cloud.sap"  # the same tenant, its other domain
    frontend_app.save()

    line = by_holder(sync_json())["test-key"]

    stored = Certificate.objects.get(fingerprint=GENERATED.fingerprint)
    assert (stored.application, stored.lifecycle, line["application"]) == (frontend_app, "active", "frontend")
    assert stored.encrypted_private_key is None  # CERTMGR_CF_STORE_KEYS is off
    added = AuditEvent.objects.get(certificate=stored, action=AuditEvent.Action.CERTIFICATE_ADDED)
    assert added.actor_label == "cf_sync"
    assert Binding.objects.get(name="test-key").certificate == stored


def test_a_generated_key_is_kept_sealed_and_audited_only_when_asked(cf, frontend_app, settings):
    settings.CERTMGR_CF_STORE_KEYS = True

    sync_json()

    stored = Certificate.objects.get(fingerprint=GENERATED.fingerprint)
    assert GENERATED.key_der() not in bytes(stored.encrypted_private_key)  # sealed, not plain
    assert AuditEvent.objects.filter(certificate=stored, action=AuditEvent.Action.KEY_STORED).exists()
    assert read_private_key(stored, actor_label="test", purpose="test") == GENERATED.key_der()
    assert not Certificate.objects.get(
        fingerprint=PROVIDED.fingerprint
    ).has_private_key  # none in the binding


def test_an_unknown_application_is_created_and_marked_found_in_cloud_foundry(cf, frontend_app):
    line = by_holder(sync_json())["k1"]

    app = Application.objects.get(client_id=FOUND_CLIENT)
    assert (app.name, app.slug, line["application"]) == ("found-ias", "found-ias", "found-ias")
    assert app.tenant_url == "https://mytenant.accounts.ondemand.com"
    found = app.discovery
    assert (found.instance_name, found.org, found.space) == ("found-ias", "labs", "sandbox")
    assert app.certificates.get().fingerprint == FOUND.fingerprint
    created = AuditEvent.objects.get(application=app, action=AuditEvent.Action.APPLICATION_CREATED)
    assert created.detail.startswith("found in Cloud Foundry")


def test_a_second_run_changes_nothing_and_prints_the_same_lines(cf, frontend_app, settings):
    settings.CERTMGR_CF_STORE_KEYS = True
    first = sync_json()
    before, rows = counts(), list(Binding.objects.values_list("pk", "first_seen").order_by("pk"))

    second = sync_json()

    assert second == first
    assert counts() == before
    assert list(Binding.objects.values_list("pk", "first_seen").order_by("pk")) == rows  # the same rows


def test_a_binding_that_is_gone_is_removed(cf, frontend_app):
    sync_json()
    cf.world.bindings = [b for b in cf.world.bindings if b.name != "test-key"]

    assert [line["binding"] for line in sync_json()] == [None, None, "k1"]
    assert not Binding.objects.filter(name="test-key").exists()
    assert Certificate.objects.filter(fingerprint=GENERATED.fingerprint).exists()  # the inventory keeps it


def test_the_token_goes_with_every_v3_call_and_nothing_but_get_reaches_the_api(cf, frontend_app):
    sync_json()

    calls = v3_calls(cf)
    assert len(calls) >= 8
    assert {call.authorization for call in calls} == {"bearer"}
    assert {call.method for call in cf.calls if call.server == "api"} == {"GET"}
    [login] = [call for call in cf.calls if call.server == "uaa"]
    assert (login.method, login.path, login.authorization, login.status) == (
        "POST",
        "/oauth/token",
        "basic",
        200,
    )


def test_client_credentials_work_as_well(cf, frontend_app, settings):
    settings.CERTMGR_CF_USERNAME = settings.CERTMGR_CF_PASSWORD = ""
    settings.CERTMGR_CF_CLIENT_ID, settings.CERTMGR_CF_CLIENT_SECRET = "portal-scanner", "scanner-pass-123"

    assert len(sync_json()) == 4


def test_credentials_the_user_may_not_read_are_said_to_be_unreadable(cf, frontend_app, settings):
    settings.CERTMGR_CF_USERNAME = "auditor"  # Space Auditor of acme/dev: sees bindings, no credentials

    lines = sync_json()

    assert [(line["instance"], line["credential_type"], line["fingerprint"]) for line in lines] == [
        ("frontend-ias", None, None),
        ("frontend-ias", None, None),
    ]
    assert "needs Space Developer" in Binding.objects.first().problem


def test_a_dry_run_reads_and_reports_but_stores_nothing(cf, frontend_app):
    before = counts()

    lines = sync_json("--dry-run")

    assert len(lines) == 4 and by_holder(lines)["k1"]["application"] == "found-ias"
    assert counts() == before


def test_a_bad_password_is_a_clean_error_and_is_recorded(cf, settings):
    settings.CERTMGR_CF_PASSWORD = "wrong"

    with pytest.raises(CommandError) as err:
        sync_json()

    assert err.value.returncode == 3
    assert str(err.value).startswith("The login server 127.0.0.1:")
    assert "refused the credentials (unauthorized): check CERTMGR_CF_USERNAME/PASSWORD" in str(err.value)
    assert "wrong" not in str(err.value)
    foundry = Foundry.objects.get()
    assert (foundry.last_sync_ok, foundry.last_sync_error) == (False, str(err.value))


def test_a_failing_api_is_a_clean_error_and_changes_nothing(cf, frontend_app):
    sync_json()
    before = counts()
    cf.faults.api_status = 500

    with pytest.raises(CommandError, match=r"answered 500 \(UnknownError\) for /v3/service_offerings") as err:
        sync_json()

    assert err.value.returncode == 4
    assert counts() == before


def test_a_login_server_that_is_not_a_sibling_is_refused_before_anything_is_sent(cf, settings):
    cf.faults.login_url = "https://uaa.elsewhere.example"

    with pytest.raises(CommandError, match="Refused the login server uaa.elsewhere.example") as err:
        sync_json()

    assert err.value.returncode == 5
    assert [call.server for call in cf.calls] == ["api"]  # the root document, and no password sent


def test_a_slow_api_ends_in_a_timeout_not_a_hang(cf, settings):
    settings.CERTMGR_HEALTHCHECK_READ_TIMEOUT = 1
    cf.faults.delay = {"/v3/service_instances": 5}

    with pytest.raises(CommandError, match="did not answer within 1 s"):
        sync_json()

    # The sync gave up before the API answered: the stand-in records a call as it answers.
    assert "/v3/service_instances" not in [call.path for call in cf.calls]


def test_a_redirect_is_not_followed(cf):
    cf.faults.redirect = {"/v3/service_offerings": "https://evil.example/v3/service_offerings"}

    with pytest.raises(CommandError, match="redirecting to https://evil.example/.*not followed"):
        sync_json()


def test_overlong_names_from_the_api_are_cut_not_a_crash(cf, frontend_app):
    long_name = "k" * 300
    extra = instance(
        "i" * 300, "acme/dev", [{"type": "key", "name": long_name, "credentials": credentials("SECRET")}]
    )
    cf.world = World.from_dict(world(extra_instances=[extra]))

    lines = sync_json()

    assert long_name in [line["binding"] for line in lines]  # reported as found
    assert Binding.objects.get(instance_name="i" * 255).name == "k" * 255  # stored as far as it fits


def test_app_names_are_asked_for_when_the_list_does_not_include_them(cf, frontend_app):
    cf.faults.omit_included_apps = True

    lines = sync_json()

    assert [(line["space"], line["app"]) for line in lines] == [
        ("acme/dev", "frontend"), ("acme/dev", None), ("acme/prod", "login"), ("labs/sandbox", None),
    ]  # fmt: skip
    asked = [c for c in v3_calls(cf) if c.path.startswith("/v3/apps/")]
    assert len(asked) == 2 and {c.authorization for c in asked} == {"bearer"}
