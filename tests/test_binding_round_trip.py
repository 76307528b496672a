"""Binding parameters, rendered for each tool, read back by that tool's own parser (domain.md,
"Binding parameters, exactly"): whatever the form, IAS gets exactly the certificate, with a newline
right after BEGIN and right before END, and JSON carries those newlines as the two characters \\n.

The expected certificate value is built here from the cryptography certificate, never by the code
under test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import replace

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from certmgr.bindings import parameters as bindings
from certmgr.core import binding
from certmgr.core.binding import Target
from tests import certs

pytestmark = pytest.mark.django_db

TERRAFORM = "/usr/local/bin/terraform"
BEGIN = "-----BEGIN CERTIFICATE-----\n"
END = "\n-----END CERTIFICATE-----"
TARGET = Target(instance="ias-prod", app="frontend", key_name="frontend-key")
APP_TARGET = Target(instance="ias-prod", app="frontend", key_name="frontend-key", cf_target="app")


def expected_value(*items: certs.Issued) -> str:
    """The certificate parameter IAS wants: each PEM without its final newline, joined by \\n."""
    blocks = []
    for item in items:
        pem = item.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        assert pem.endswith("-----\n")
        blocks.append(pem[:-1])
    value = "\n".join(blocks)
    assert value.startswith(BEGIN) and value.endswith(END)
    return value


def expected_parameters(*items: certs.Issued) -> dict:
    return {"credential-type": "X509_PROVIDED", "certificate": expected_value(*items)}


def terraform_eval(tmp_path, config: str = "", **expressions: str) -> dict:
    """Each HCL expression evaluated by the real terraform: the string it yields, by name.

    ``terraform console`` reads stdin line by line and prints only the last result, so the
    multi-line expressions go verbatim into a ``locals`` block of its working directory (next to
    ``config``), and one line of stdin asks for all of them at once.
    """
    body = "".join(f"  {name} = {expr}\n" for name, expr in expressions.items())
    (tmp_path / "main.tf").write_text("locals {\n" + body + "}\n" + config)
    query = "jsonencode({" + ", ".join(f'"{name}" = local.{name}' for name in expressions) + "})\n"
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": "/dev/null",
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }
    done = subprocess.run(
        [TERRAFORM, "console", "-no-color"],
        input=query,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    return json.loads(json.loads(line))  # an HCL-quoted string holding JSON


def terraform_fmt(block: str) -> str:
    """``terraform fmt`` of the whole block: it parses the HCL (no provider needed) and lays it out."""
    done = subprocess.run(
        [TERRAFORM, "fmt", "-no-color", "-"],
        input=block,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null", "CHECKPOINT_DISABLE": "1"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def attribute(block: str, name: str) -> str:
    [value] = re.findall(rf"^  {name} +=  *(.+)$", block, re.MULTILINE)
    return value


def jsonencode_expression(block: str) -> str:
    """The ``jsonencode({...})`` expression, cut from a rendered terraform resource."""
    match = re.search(r"^  parameters = (jsonencode\(\{\n.*?\n  \}\))$", block, re.MULTILINE | re.DOTALL)
    assert match, block
    return match.group(1)


# --- the certificates: RSA and EC, leaf alone or with its issuers ------------------------------


@pytest.fixture(params=["rsa", "ec"])
def key_kind(request):
    return request.param


@pytest.fixture
def issued(key_kind):
    """(leaf, intermediate, root): the leaf issued by the suite's client CA."""
    root, inter, ca_leaf = certs.ca_hierarchy()
    leaf = ca_leaf if key_kind == "rsa" else certs.issue(key_kind="ec", issuer=inter, key_slot=104, serial=4)
    return leaf, inter, root


@pytest.fixture(params=[False, True], ids=["leaf", "chain"])
def case(request, issued, store):
    """A stored certificate, whether to render its chain, and the parameters IAS must receive."""
    leaf, inter, root = issued
    chain = request.param
    stored = store(leaf.pem + inter.pem + root.pem if chain else leaf.pem)
    expected = expected_parameters(leaf, inter, root) if chain else expected_parameters(leaf)
    return stored, chain, expected


def render(case, fmt: str, target: Target = TARGET) -> str:
    stored, chain, _ = case
    return bindings.rendered(stored, fmt, chain=chain, target=target)


def test_the_parameters_of_a_stored_certificate_are_exactly_the_expected_ones(case):
    stored, chain, expected = case

    assert bindings.parameters(stored, chain=chain) == expected
    assert expected["certificate"].count(BEGIN) == (3 if chain else 1)


def test_the_certificate_value_of_a_pem_list_is_the_blocks_joined_by_newlines(issued):
    leaf, inter, root = issued
    pems = [item.pem.decode("ascii") for item in (leaf, inter, root)]

    assert binding.certificate_value(pems[:1]) == expected_value(leaf)
    assert binding.certificate_value(pems) == expected_value(leaf, inter, root)
    assert binding.x509_provided(pems) == expected_parameters(leaf, inter, root)


def test_json_reads_back_as_the_parameters_with_literal_backslash_n(case):
    text = render(case, "json")

    assert json.loads(text) == case[2]
    assert '"-----BEGIN CERTIFICATE-----\\n' in text
    assert "-----BEGIN CERTIFICATE-----\n" not in text


# A recording stand-in for the cf CLI: it appends its argv to $CF_RECORD (one JSON line per call)
# and, like IAS, refuses a certificate it has already been given (exit 1).
FAKE_CF = f"""#!{sys.executable}
import json, os, sys
record = os.environ["CF_RECORD"]
calls = [json.loads(line) for line in open(record)] if os.path.exists(record) else []
def certificate(argv):
    return json.loads(argv[argv.index("-c") + 1]).get("certificate") if "-c" in argv else None
with open(record, "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
given = certificate(sys.argv[1:])
if given is not None and given in [certificate(call) for call in calls]:
    sys.exit("FAILED: the certificate is already used in this tenant")
"""


@pytest.fixture
def run_cf_script(tmp_path):
    """Run a rendered cf script with ``bash -e`` and the recording cf first on PATH: its cf calls."""
    bin_dir, record = tmp_path / "bin", tmp_path / "cf-calls.jsonl"
    bin_dir.mkdir()
    (bin_dir / "cf").write_text(FAKE_CF)
    (bin_dir / "cf").chmod(0o755)

    def _run(script: str) -> list[list[str]]:
        path = tmp_path / "cf-commands.sh"
        path.write_text(script)
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CF_RECORD": str(record)}
        done = subprocess.run(["bash", "-e", str(path)], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        calls = [json.loads(line) for line in record.read_text().splitlines()]
        record.unlink()
        return calls

    return _run


def test_the_cf_script_for_a_service_key_creates_the_key_and_nothing_else(case, run_cf_script):
    [call] = run_cf_script(render(case, "cf"))

    assert call[:4] == ["create-service-key", "ias-prod", "frontend-key", "-c"]
    assert len(call) == 5 and json.loads(call[4]) == case[2]
    assert "-----BEGIN CERTIFICATE-----\\n" in call[4]


def test_the_cf_script_for_an_app_binds_the_app_and_nothing_else(case, run_cf_script):
    [call] = run_cf_script(render(case, "cf", APP_TARGET))

    assert call[:4] == ["bind-service", "frontend", "ias-prod", "-c"]
    assert len(call) == 5 and json.loads(call[4]) == case[2]


def test_no_script_uses_one_certificate_twice(case, run_cf_script):
    """IAS refuses a certificate already in the tenant, a key or binding of the same instance included."""
    for target in (TARGET, APP_TARGET):
        calls = run_cf_script(render(case, "cf", target))

        with_certificate = [call for call in calls if "-c" in call]
        assert len(with_certificate) == 1, calls
        assert json.loads(with_certificate[0][-1])["certificate"] == case[2]["certificate"]


def test_the_recording_cf_refuses_a_certificate_used_twice(run_cf_script, leaf):
    """The check above can fail: both commands in one script make the second cf call fail."""
    params = binding.x509_provided([leaf.pem.decode("ascii")])
    both = binding.render(params, "cf", TARGET) + binding.render(params, "cf", APP_TARGET)

    with pytest.raises(AssertionError, match="already used in this tenant"):
        run_cf_script(both)


def test_manifest_yaml_carries_the_parameters_on_the_service_of_the_application(case):
    doc = yaml.safe_load(render(case, "manifest"))

    [application] = doc["applications"]
    [service] = application["services"]
    assert (application["name"], service["name"]) == ("frontend", "ias-prod")
    assert service["parameters"] == case[2]


def test_mta_yaml_for_an_app_carries_the_parameters_under_its_requires_config(case):
    doc = yaml.safe_load(render(case, "mta", APP_TARGET))

    assert list(doc) == ["modules"]
    [module] = doc["modules"]
    [required] = module["requires"]
    assert (module["name"], required["name"]) == ("frontend", "ias-prod")
    assert required["parameters"] == {"config": case[2]}


def test_mta_yaml_for_a_service_key_carries_the_parameters_under_the_keys_config(case):
    doc = yaml.safe_load(render(case, "mta"))

    assert list(doc) == ["resources"]
    [resource] = doc["resources"]
    assert (resource["name"], resource["type"]) == ("ias-prod", "org.cloudfoundry.managed-service")
    parameters = resource["parameters"]
    assert (parameters["service"], parameters["service-plan"]) == ("identity", "application")
    assert parameters["service-keys"] == [{"name": "frontend-key", "config": case[2]}]


def test_kyma_service_binding_carries_the_parameters_in_its_spec(case):
    doc = yaml.safe_load(render(case, "kyma"))

    assert (doc["apiVersion"], doc["kind"]) == ("services.cloud.sap.com/v1", "ServiceBinding")
    assert doc["metadata"]["name"] == "frontend-key"
    assert doc["spec"]["serviceInstanceName"] == "ias-prod"
    assert doc["spec"]["parameters"] == case[2]


def test_terraform_jsonencode_is_exactly_the_expected_hcl_and_terraform_evaluates_it(case, tmp_path):
    block = render(case, "terraform")
    escaped = case[2]["certificate"].replace("\n", "\\n")
    expected_expression = (
        f'jsonencode({{\n    "credential-type" = "X509_PROVIDED"\n    "certificate"     = "{escaped}"\n  }})'
    )

    expression = jsonencode_expression(block)

    assert expression == expected_expression
    assert block.startswith('resource "btp_subaccount_service_binding" "frontend-key" {\n')
    evaluated = terraform_eval(tmp_path, parameters=expression)
    assert json.loads(evaluated["parameters"]) == case[2]
    assert terraform_fmt(block) == block


@pytest.mark.parametrize(
    ("target", "label", "attributes"),
    [
        (TARGET, "frontend-key", ["type", "name", "service_instance", "parameters"]),
        (APP_TARGET, "frontend", ["type", "service_instance", "app", "parameters"]),
    ],
    ids=["key", "app"],
)
def test_terraform_for_cloud_foundry_is_a_credential_binding_of_the_chosen_type(
    case, tmp_path, target, label, attributes
):
    block = render(case, "terraform-cf", target)

    assert block.startswith(f'resource "cloudfoundry_service_credential_binding" "{label}" {{\n')
    assert re.findall(r"^  ([a-z_]+) +=", block, re.MULTILINE) == attributes
    assert terraform_fmt(block) == block
    assert attribute(block, "service_instance") == "var.ias_instance_guid"
    expressions = {"type": attribute(block, "type"), "parameters": jsonencode_expression(block)}
    if target.cf_target == "key":
        expressions["name"] = attribute(block, "name")
    else:
        assert attribute(block, "app") == "var.app_guid"
    evaluated = terraform_eval(tmp_path, **expressions)
    assert evaluated["type"] == target.cf_target
    assert evaluated.get("name", "frontend-key") == "frontend-key"
    assert json.loads(evaluated["parameters"]) == case[2]


# --- names and pasted PEM ------------------------------------------------------------------------

AWKWARD = Target(
    instance="ias 'prod' $HOME", app='my "app"; rm -rf ~ \U0001f600', key_name="key ${var.x} %{if} `id`"
)


def test_target_names_with_shell_special_characters_reach_cf_as_one_argument_each(leaf, run_cf_script):
    params = binding.x509_provided([leaf.pem.decode("ascii")])

    [create] = run_cf_script(binding.render(params, "cf", AWKWARD))
    [bind] = run_cf_script(binding.render(params, "cf", replace(AWKWARD, cf_target="app")))

    assert create == ["create-service-key", AWKWARD.instance, AWKWARD.key_name, "-c", create[4]]
    assert bind == ["bind-service", AWKWARD.app, AWKWARD.instance, "-c", bind[4]]
    assert json.loads(create[4]) == json.loads(bind[4]) == expected_parameters(leaf)


@pytest.mark.parametrize("name", ["line\nbreak", "x\n$(touch pwned)\n", "\r\n# comment"])
def test_a_newline_in_a_name_never_escapes_into_the_script(leaf, run_cf_script, tmp_path, name):
    params = binding.x509_provided([leaf.pem.decode("ascii")])

    for target in (Target(instance=name, key_name=name), Target(instance=name, app=name, cf_target="app")):
        [call] = run_cf_script(binding.render(params, "cf", target))
        assert name in call and call[-2] == "-c"
    assert not (tmp_path / "pwned").exists()


def test_awkward_target_names_round_trip_through_yaml_and_terraform(leaf, tmp_path):
    params = binding.x509_provided([leaf.pem.decode("ascii")])

    manifest = yaml.safe_load(binding.render(params, "manifest", AWKWARD))
    kyma = yaml.safe_load(binding.render(params, "kyma", AWKWARD))
    mta_key = yaml.safe_load(binding.render(params, "mta", AWKWARD))["resources"][0]
    mta_app = yaml.safe_load(binding.render(params, "mta", replace(AWKWARD, cf_target="app")))["modules"][0]
    block = binding.render(params, "terraform", AWKWARD)

    assert manifest["applications"][0]["name"] == AWKWARD.app
    assert manifest["applications"][0]["services"][0]["name"] == AWKWARD.instance
    assert (kyma["metadata"]["name"], kyma["spec"]["serviceInstanceName"]) == (
        AWKWARD.key_name,
        AWKWARD.instance,
    )
    assert (mta_key["name"], mta_key["parameters"]["service-keys"][0]["name"]) == (
        AWKWARD.instance,
        AWKWARD.key_name,
    )
    assert (mta_app["name"], mta_app["requires"][0]["name"]) == (AWKWARD.app, AWKWARD.instance)
    [name] = re.findall(r'^  name                = (".*")$', block, re.MULTILINE)
    assert block.startswith('resource "btp_subaccount_service_binding" "key___var_x____if___id_" {')
    evaluated = terraform_eval(tmp_path, name=name, parameters=jsonencode_expression(block))
    assert evaluated["name"] == AWKWARD.key_name
    assert json.loads(evaluated["parameters"]) == expected_parameters(leaf)


@pytest.mark.parametrize(
    ("key_name", "label"),
    [
        ("frontend-next", "frontend-next"),
        ("2024-rotation", "_2024-rotation"),
        ("", "_"),
        ("\u043a\u043b\u044e\u0447", "____"),
    ],
)
def test_the_terraform_resource_name_is_one_terraform_accepts(leaf, tmp_path, key_name, label):
    params = binding.x509_provided([leaf.pem.decode("ascii")])

    block = binding.render(params, "terraform", Target(key_name=key_name))

    assert block.startswith(f'resource "btp_subaccount_service_binding" "{label}" {{\n')
    # Resource and output names follow one rule (hclsyntax.ValidIdentifier); an output needs no provider.
    output = f'output "{label}" {{\n  value = 1\n}}\n'
    assert terraform_eval(tmp_path, output, parameters=jsonencode_expression(block))


def rewrapped(item: certs.Issued, width: int, newline: str) -> str:
    body = "".join(item.pem.decode("ascii").splitlines()[1:-1])
    lines = [body[i : i + width] for i in range(0, len(body), width)]
    return newline.join(["  -----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----  ", ""])


@pytest.mark.parametrize(("width", "newline"), [(76, "\r\n"), (40, "\n"), (64, "\r\n"), (100_000, "\n")])
def test_a_pem_pasted_with_crlf_or_odd_wrapping_is_canonicalised_to_64_columns(width, newline):
    root, inter, leaf = certs.ca_hierarchy()
    pasted = [rewrapped(leaf, width, newline), rewrapped(inter, width, newline)]

    value = binding.certificate_value(pasted)

    assert value == expected_value(leaf, inter)
    assert "\r" not in value
    for block in value.split(END + "\n"):
        body = block.removeprefix(BEGIN).removesuffix(END).split("\n")
        assert all(len(line) == 64 for line in body[:-1]) and 0 < len(body[-1]) <= 64


def test_something_else_than_a_certificate_is_refused():
    from certmgr.core.errors import InputError

    with pytest.raises(InputError):
        binding.certificate_value(["-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"])


def test_x509_generated_parameters_keep_their_numbers_in_every_form(tmp_path):
    params = binding.x509_generated(key_length=4096, validity=7, app_identifier="frontend")

    assert json.loads(binding.render(params, "json")) == params
    assert json.loads(shlex.split(binding.render(params, "cf").splitlines()[-1])[-1]) == params
    assert yaml.safe_load(binding.render(params, "kyma"))["spec"]["parameters"] == params
    expression = jsonencode_expression(binding.render(params, "terraform"))
    assert json.loads(terraform_eval(tmp_path, parameters=expression)["parameters"]) == params


# --- finding the certificate to render -----------------------------------------------------------


def colon_hex(fingerprint: str) -> str:
    return ":".join(fingerprint[i : i + 2] for i in range(0, len(fingerprint), 2)).upper()


def test_find_takes_a_pk_a_fingerprint_or_a_unique_prefix_of_it(store, leaf):
    cert = store(leaf.pem)

    assert bindings.find(str(cert.pk)) == cert
    assert bindings.find(leaf.fingerprint) == cert
    assert bindings.find(colon_hex(leaf.fingerprint)) == cert
    assert bindings.find(colon_hex(leaf.fingerprint)[:11]) == cert  # 4 bytes: 8 hex digits
    assert bindings.find(leaf.fingerprint[:8].upper()) == cert


def test_find_refuses_too_short_unknown_or_ambiguous_references(store, leaf):
    from certmgr.models import Certificate

    cert = store(leaf.pem)
    twin = Certificate.objects.get(pk=cert.pk)
    ninth = "e" if leaf.fingerprint[8] == "f" else "f"
    twin.pk, twin.fingerprint = None, leaf.fingerprint[:8] + ninth + "0" * 55  # shares 8 digits
    twin.save()

    assert bindings.find(leaf.fingerprint[:7]) is None
    assert bindings.find(colon_hex(leaf.fingerprint)[:8]) is None  # colons do not count: 6 digits
    assert bindings.find(leaf.fingerprint[:8]) is None  # two certificates start so
    assert bindings.find(leaf.fingerprint[:9]) == cert
    assert bindings.find(twin.fingerprint[:9]) == twin
    assert bindings.find(leaf.fingerprint) == cert
    assert bindings.find(str(twin.pk + 1000)) is None
    assert bindings.find("") is None
    assert bindings.find("\u00b2") is None  # a digit to str.isdigit, not to int()
