"""The Cloud Foundry stand-in answers as the v3 reference says (cloudfoundry/cloud_controller_ng
docs/v3) and as the cf CLI expects its UAA to (cloudfoundry/cli api/uaa): a stand-in that is
wrong would make the landscape tests prove nothing. Spoken to with the standard library only."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from iasstandin.cfapi import World
from tests.cfworld import PASSWORD, credentials, instance, world


@pytest.fixture
def api(cloud_foundry):
    cloud_foundry.reset()
    cloud_foundry.world = World.from_dict(world())
    yield cloud_foundry
    cloud_foundry.reset()


def call(api, url: str, *, token: str | None = None, form: dict | None = None, basic: str | None = None):
    assert url.startswith("https://127.0.0.1:")
    request = urllib.request.Request(url, data=urlencode(form).encode() if form is not None else None)  # noqa: S310
    if form is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if token:
        request.add_header("Authorization", f"bearer {token}")
    if basic is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(basic.encode()).decode())
    context = ssl.create_default_context(cafile=str(api.ca_file))
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as response:  # noqa: S310 - https to the stand-in
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def token(api, username="scanner", password=PASSWORD) -> str:
    form = {"grant_type": "password", "username": username, "password": password}
    status, body = call(api, api.uaa_url + "/oauth/token", form=form, basic="cf:")
    assert status == 200, body
    return body["access_token"]


def test_the_root_document_names_the_login_server_and_v3(api):
    status, body = call(api, api.url + "/")

    assert status == 200
    assert body["links"]["login"]["href"] == api.uaa_url
    assert body["links"]["uaa"]["href"] == api.uaa_url
    assert body["links"]["cloud_controller_v3"]["href"] == api.url + "/v3"


def test_uaa_takes_the_cli_password_grant_and_client_credentials(api):
    assert token(api)
    form = {"grant_type": "client_credentials", "client_id": "portal-scanner", "client_secret": PASSWORD}
    status, body = call(api, api.uaa_url + "/oauth/token", form=form)
    assert (status, body["token_type"]) == (200, "bearer")


def test_uaa_refuses_bad_credentials_as_uaa_does(api):
    form = {"grant_type": "password", "username": "scanner", "password": "wrong"}
    assert call(api, api.uaa_url + "/oauth/token", form=form, basic="cf:") == (
        401,
        {"error": "unauthorized", "error_description": "Bad credentials"},
    )
    form["password"] = PASSWORD
    status, body = call(
        api, api.uaa_url + "/oauth/token", form=form, basic="cf:secret"
    )  # not the CLI's client
    assert (status, body["error"]) == (401, "invalid_client")


def test_v3_wants_a_valid_token(api):
    assert call(api, api.url + "/v3/organizations")[1]["errors"][0]["title"] == "CF-NotAuthenticated"
    status, body = call(api, api.url + "/v3/organizations", token="made-up")
    assert (status, body["errors"][0]["title"]) == (401, "CF-InvalidAuthToken")


def test_lists_are_paginated_with_next_null_on_the_last_page(api):
    url = api.url + "/v3/service_instances?per_page=4"
    pages = []
    while url:
        status, body = call(api, url, token=token(api))
        assert status == 200
        pages.append(body)
        url = (body["pagination"]["next"] or {}).get("href")

    assert [len(page["resources"]) for page in pages] == [4, 4, 4]  # 12 instances of every offering
    last = pages[-1]["pagination"]
    assert (last["total_results"], last["total_pages"], last["next"]) == (12, 3, None)
    assert last["previous"]["href"].endswith("page=2&per_page=4")


def test_unknown_filters_and_bad_page_sizes_are_400(api):
    status, body = call(
        api, api.url + "/v3/service_instances?service_offering_names=identity", token=token(api)
    )
    assert (status, body["errors"][0]["title"]) == (400, "CF-BadQueryParameter")
    assert call(api, api.url + "/v3/spaces?per_page=5001", token=token(api))[0] == 400


def test_bindings_include_their_apps_and_filter_by_instance_and_type(api):
    frontend_ias = next(i for i in api.world.instances if i.name == "frontend-ias")
    query = urlencode({"service_instance_guids": frontend_ias.guid, "type": "key", "include": "app"})
    status, body = call(api, f"{api.url}/v3/service_credential_bindings?{query}", token=token(api))

    assert [(b["type"], b["name"]) for b in body["resources"]] == [("key", "test-key")]
    assert "app" not in body["resources"][0]["relationships"]
    status, body = call(api, f"{api.url}/v3/service_credential_bindings?include=app", token=token(api))
    assert {app["name"] for app in body["included"]["apps"]} == {"frontend", "login"}


def test_only_admins_and_space_developers_read_credentials(api):
    binding = api.world.bindings[0]
    url = f"{api.url}/v3/service_credential_bindings/{binding.guid}/details"
    status, body = call(api, url, token=token(api))
    assert status == 200 and body["credentials"]["clientid"] == binding.credentials["clientid"]

    status, body = call(api, url, token=token(api, "auditor"))  # sees the binding, not its secrets
    assert (status, body["errors"][0]["title"]) == (404, "CF-ResourceNotFound")
    listed = call(api, f"{api.url}/v3/service_credential_bindings", token=token(api, "auditor"))[1]
    assert binding.guid in [b["guid"] for b in listed["resources"]]


def test_a_binding_being_created_has_no_details_yet(api):
    pending = {"type": "key", "name": "half-made", "credentials": credentials("SECRET")}
    pending["last_operation"] = {"type": "create", "state": "in progress"}
    api.world = World.from_dict(world(extra_instances=[instance("new-ias", "acme/dev", [pending])]))
    guid = api.world.bindings[-1].guid

    status, body = call(api, f"{api.url}/v3/service_credential_bindings/{guid}/details", token=token(api))

    assert (status, body["errors"][0]["detail"]) == (404, "Creation of service key in progress")
