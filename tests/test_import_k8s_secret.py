"""What Kyma users have: the Secret the SAP BTP service operator writes for an identity binding, as
`kubectl get secret NAME -o yaml` (or `-o json`) prints it, in the operator's three layouts (one key
per credential field, `secretKey`, `secretRootKey`; SAP/sap-btp-service-operator README, "Service
Binding Secret Formats"). And X509_ATTESTED bindings, which have no certificate of ours.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from certmgr.core.errors import InputError
from certmgr.core.parse import parse_certificate_input
from certmgr.models import Application
from tests import certs

LAYOUTS = ["fields", "secretKey", "secretRootKey", "both"]
ATTESTED = "no certificate to manage: attested by the Zero Trust Identity Service"
CLIENT_ID = "5fd2be25-0e09-4321-8817-4a7b11a2ace2"
TENANT = "https://mytenant.accounts.ondemand.com"
APP_TID = "2c1a9b4e-7d3f-4e2a-9b8c-1d2e3f4a5b6c"


def as_yaml(secret: dict) -> bytes:
    """Block style with sorted keys, as kubectl prints it."""
    return yaml.safe_dump(secret, default_flow_style=False).encode()


def as_json(secret: dict) -> bytes:
    return json.dumps(secret, indent=4).encode()


ENCODINGS = {"yaml": as_yaml, "json": as_json}


def error_of(data: bytes) -> InputError:
    with pytest.raises(InputError) as caught:
        parse_certificate_input(data)
    return caught.value


@pytest.fixture
def hierarchy():
    root, inter, leaf = certs.ca_hierarchy()
    return leaf, inter


# --- the three layouts, as YAML and as JSON ---------------------------------------------------------


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_secret_in_each_layout_gives_the_certificate_and_the_applications_facts(
    hierarchy, layout, encoding
):
    leaf, inter = hierarchy
    credentials = certs.identity_credentials(leaf, certificate=(leaf.pem + inter.pem).decode())

    parsed = parse_certificate_input(ENCODINGS[encoding](certs.k8s_secret(credentials, layout)))

    assert parsed.format == "kubernetes-secret"
    assert parsed.leaf.sha256 == leaf.fingerprint
    assert [c.sha256 for c in parsed.chain] == [leaf.fingerprint, inter.fingerprint]
    assert not parsed.has_private_key
    found = parsed.binding
    assert (found.client_id, found.tenant_url, found.app_tid, found.certurl) == (
        CLIENT_ID,
        TENANT,
        APP_TID,
        TENANT,
    )
    assert found.domains == ("accounts.ondemand.com", "accounts.cloud.sap")
    assert (found.credential_type, found.name) == ("X509_PROVIDED", "frontend-ias-binding")
    assert parsed.warnings == ()


def test_string_data_as_in_the_operators_readme_is_read(leaf):
    """stringData (plain text, a block scalar for the JSON), not base64 data."""
    credentials = json.dumps(certs.identity_credentials(leaf), indent=2)
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: sample-binding\nstringData:\n  myCredentials: |\n"
        + "".join(f"    {line}\n" for line in credentials.splitlines())
        + "  instance_name: sample-instance\n  plan: application\n  type: identity\n"
    )

    parsed = parse_certificate_input(secret.encode())

    assert (parsed.leaf.sha256, parsed.binding.client_id) == (leaf.fingerprint, CLIENT_ID)
    assert parsed.binding.name == "sample-binding"


def test_kubectl_yaml_with_a_document_marker_and_comments_is_read(leaf):
    text = b"# kubectl get secret frontend-ias-binding -o yaml\n---\n" + as_yaml(
        certs.k8s_secret(certs.identity_credentials(leaf))
    )

    assert parse_certificate_input(text).leaf.sha256 == leaf.fingerprint


# --- a Secret with the private key (X509_GENERATED) -------------------------------------------------


def import_certs(*args) -> tuple[int, list[str]]:
    out = io.StringIO()
    try:
        call_command("import_certs", *map(str, args), stdout=out, stderr=io.StringIO())
        status = 0
    except SystemExit as exc:
        status = exc.code
    return status, out.getvalue().splitlines()


@pytest.mark.django_db
@pytest.mark.parametrize("layout", LAYOUTS)
def test_import_fills_client_id_tenant_domains_app_tid_and_certurl(tmp_path: Path, leaf, layout):
    path = tmp_path / "secret.yaml"
    path.write_bytes(as_yaml(certs.k8s_secret(certs.identity_credentials(leaf), layout)))

    status, [line] = import_certs("--app", "payments", "--create-app", path)

    app = Application.objects.get(slug="payments")
    assert status == 0, line
    assert (app.client_id, app.tenant_url, app.app_tid, app.certurl) == (CLIENT_ID, TENANT, APP_TID, TENANT)
    assert app.domains == ["accounts.ondemand.com", "accounts.cloud.sap"]
    assert app.certificates.get().source_format == "kubernetes-secret"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("store_keys", "kept"), [(True, True), (False, False)], ids=["store-keys", "discard"]
)
def test_the_secrets_private_key_is_stored_only_when_asked(tmp_path: Path, leaf, store_keys, kept):
    path = tmp_path / "secret.json"
    path.write_bytes(as_json(certs.k8s_secret(certs.identity_credentials(leaf, with_key=True))))

    status, [line] = import_certs("--app", "payments", "--create-app", *(["--store-keys"] * store_keys), path)

    cert = Application.objects.get(slug="payments").certificates.get()
    assert status == 0, line
    assert cert.has_private_key is kept
    assert "PRIVATE KEY" not in line


@pytest.mark.django_db
def test_the_upload_page_shows_app_tid_and_certurl_from_the_secret(
    client, owner, frontend_app, leaf, time_machine
):
    time_machine.move_to(certs.MID_LIFE, tick=False)
    client.force_login(owner)
    Application.objects.filter(pk=frontend_app.pk).update(client_id="", tenant_url="", domains=[])
    secret = as_yaml(certs.k8s_secret(certs.identity_credentials(leaf), "secretRootKey")).decode()

    shown = client.post("/upload/", {"step": "preview", "application": frontend_app.pk, "text": secret})
    token = shown.context["token"]
    client.post("/upload/", {"step": "confirm", "token": token})

    page = shown.content.decode()
    assert "From the Kubernetes Secret" in page and APP_TID in page and f"<dd>{TENANT}</dd>" in page
    frontend_app.refresh_from_db()
    assert (frontend_app.app_tid, frontend_app.certurl, frontend_app.client_id) == (
        APP_TID,
        TENANT,
        CLIENT_ID,
    )
    assert APP_TID in client.get(frontend_app.get_absolute_url()).content.decode()


# --- X509_ATTESTED ------------------------------------------------------------------------------------


def attested_credentials() -> dict:
    return {"clientid": CLIENT_ID, "url": TENANT, "credential-type": "X509_ATTESTED", "app_tid": APP_TID}


@pytest.mark.parametrize(
    "document",
    [
        lambda: as_yaml(certs.k8s_secret(attested_credentials())),
        lambda: as_json(certs.k8s_secret(attested_credentials(), "secretKey")),
        lambda: json.dumps({"credentials": attested_credentials()}).encode(),
        lambda: json.dumps(
            {"identity": [{"label": "identity", "credentials": attested_credentials()}]}
        ).encode(),
    ],
    ids=["secret-yaml", "secret-json", "service-key", "vcap-services"],
)
def test_an_x509_attested_binding_is_named_as_having_no_certificate_to_manage(document):
    error = error_of(document())

    assert error.code == InputError.ATTESTED_BINDING
    assert ATTESTED in error.message


def test_an_attested_binding_is_named_even_if_it_carried_a_certificate(leaf):
    credentials = certs.identity_credentials(leaf, **{"credential-type": "X509_ATTESTED"})

    assert error_of(as_yaml(certs.k8s_secret(credentials))).code == InputError.ATTESTED_BINDING


# --- what is refused, with a named reason --------------------------------------------------------------


def test_yaml_aliases_are_refused_before_anything_expands():
    bomb = "apiVersion: v1\nkind: Secret\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]\n"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    )

    error = error_of(bomb.encode())

    assert error.code == InputError.CORRUPT
    assert "alias" in error.message


def test_a_data_value_that_is_not_base64_is_named_and_no_value_is_quoted(leaf):
    secret = certs.k8s_secret(certs.identity_credentials(leaf, with_key=True))
    secret["data"]["clientid"] = "not base64 at all!"

    error = error_of(as_yaml(secret))

    assert (error.code, error.message) == (
        InputError.CORRUPT,
        "The Secret's data key 'clientid' is not base64-encoded UTF-8 text.",
    )


def test_invalid_yaml_names_the_place_and_never_quotes_the_input(leaf):
    key_line = leaf.key_pem().decode().splitlines()[1]
    text = f"apiVersion: v1\nkind: Secret\ndata:\n  key: {key_line}\n  : [unclosed\n"

    error = error_of(text.encode())

    assert error.code == InputError.CORRUPT
    assert error.message.startswith("The input looks like YAML but is not valid YAML (line ")
    assert key_line not in error.message


def test_a_secret_of_another_kind_of_binding_is_not_a_certificate():
    secret = {"apiVersion": "v1", "kind": "Secret", "data": {"uri": base64.b64encode(b"https://x").decode()}}

    error = error_of(as_yaml(secret))

    assert error.code == InputError.NOT_A_CERTIFICATE
    assert "holds no identity binding" in error.message


def test_a_list_of_secrets_asks_for_one(leaf):
    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [certs.k8s_secret(certs.identity_credentials(leaf))],
    }

    error = error_of(as_yaml(listing))

    assert error.code == InputError.AMBIGUOUS
    assert "kubectl get secret NAME -o yaml" in error.message


def test_deep_or_huge_yaml_is_refused_quickly():
    deep = b"apiVersion: v1\ndata: " + b"[" * 500_000
    wide = b"apiVersion: v1\nkind: Secret\ndata:\n" + b"".join(b"  k%d: QQ==\n" % i for i in range(60_000))

    for hostile in (deep, wide):
        error = error_of(hostile)
        assert error.code == InputError.CORRUPT and "too large or nests too deeply" in error.message
