"""The service-binding parameters that hand a certificate to IAS, in each tool's own form.

X509_PROVIDED takes the certificate and nothing else (no private key, ever). IAS wants the PEM
with a newline right after the BEGIN line and right before the END line; JSON carries those
newlines as ``\\n``, YAML as a literal block, HCL as ``\\n`` escapes.

IAS takes a certificate once per tenant, and that includes one instance's bindings and service
keys: the Cloud Foundry forms (cf, mta, terraform-cf) therefore put it either into a service key
or into an app's binding (``Target.cf_target``), never both.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from .errors import InputError

FORMATS = ("json", "cf", "manifest", "mta", "kyma", "terraform", "terraform-cf")
CF_TARGETS = ("key", "app")  # a service key (cf create-service-key), or an app's binding (cf bind-service)
_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.DOTALL)


@dataclass(frozen=True)
class Target:
    """Names to put into the rendered blocks; the defaults are placeholders to replace."""

    instance: str = "my-ias-instance"
    app: str = "my-app"
    key_name: str = "my-service-key"
    cf_target: str = "key"  # one of CF_TARGETS


def certificate_value(pems: list[str]) -> str:
    """The ``certificate`` parameter: each PEM canonical (64-column body), blocks joined by \\n."""
    blocks = []
    for pem in pems:
        match = _BLOCK.search(pem)
        if match is None:
            raise InputError(InputError.NOT_A_CERTIFICATE, "Not a PEM certificate.")
        body = "".join(match.group(1).split())
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        blocks.append("-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----")
    return "\n".join(blocks)


def x509_provided(pems: list[str]) -> dict:
    return {"credential-type": "X509_PROVIDED", "certificate": certificate_value(pems)}


def render(parameters: dict, fmt: str, target: Target | None = None) -> str:
    """``parameters`` (a flat dict of strings and numbers) in the form ``fmt`` (one of FORMATS)."""
    return _RENDERERS[fmt](parameters, target or Target())


def _json(parameters: dict, target: Target) -> str:
    return json.dumps(parameters, indent=2) + "\n"


def _cf(parameters: dict, target: Target) -> str:
    # Runnable as is (sh or bash -e). No user-typed name goes into a comment: a newline in it would
    # end the comment; in the command shlex.quote keeps it one argument.
    inline = shlex.quote(json.dumps(parameters, separators=(",", ":")))
    if target.cf_target == "app":
        what, other = "Binds the app to the IAS instance", "a service key"
        command = f"cf bind-service {shlex.quote(target.app)} {shlex.quote(target.instance)} -c {inline}\n"
        after = "# The app reads its binding when it starts: restage it afterwards (cf restage).\n"
    else:
        what, other = "Creates a service key of the IAS instance", "an app's binding"
        command = f"cf create-service-key {shlex.quote(target.instance)} {shlex.quote(target.key_name)} -c {inline}\n"
        after = ""
    return (
        "#!/bin/sh\n"
        f"# {what} with this certificate (X509_PROVIDED).\n"
        f"# IAS takes a certificate once per tenant: do not also put it into {other}.\n"
        "set -e\n" + command + after
    )


def _manifest(parameters: dict, target: Target) -> str:
    head = f"applications:\n- name: {_yaml_scalar(target.app)}\n  services:\n  - name: {_yaml_scalar(target.instance)}\n"
    return head + "    parameters:\n" + _yaml_map(parameters, indent=6)


def _mta(parameters: dict, target: Target) -> str:
    if target.cf_target == "app":
        # modules[].requires[].parameters.config: the parameters of the module's binding.
        head = (
            f"modules:\n  - name: {_yaml_scalar(target.app)}\n    requires:\n"
            f"      - name: {_yaml_scalar(target.instance)}\n        parameters:\n          config:\n"
        )
        return head + _yaml_map(parameters, indent=12)
    # resources[].parameters.service-keys[].config: a service key the deployer creates with the
    # managed instance (SAP's MTA docs show service-keys on org.cloudfoundry.managed-service).
    head = (
        f"resources:\n  - name: {_yaml_scalar(target.instance)}\n    type: org.cloudfoundry.managed-service\n"
        "    parameters:\n      service: identity\n      service-plan: application\n      service-keys:\n"
        f"        - name: {_yaml_scalar(target.key_name)}\n          config:\n"
    )
    return head + _yaml_map(parameters, indent=12)


def _kyma(parameters: dict, target: Target) -> str:
    head = (
        "apiVersion: services.cloud.sap.com/v1\nkind: ServiceBinding\nmetadata:\n"
        f"  name: {_yaml_scalar(target.key_name)}\nspec:\n  serviceInstanceName: {_yaml_scalar(target.instance)}\n"
        "  parameters:\n"
    )
    return head + _yaml_map(parameters, indent=4)


def _terraform(parameters: dict, target: Target) -> str:
    """SAP BTP provider: a binding of an instance managed in the subaccount."""
    return (
        f'resource "btp_subaccount_service_binding" "{_hcl_label(target.key_name)}" {{\n'
        "  subaccount_id       = var.subaccount_id\n"
        "  service_instance_id = var.ias_instance_id\n"
        f"  name                = {_hcl_string(target.key_name)}\n"
        f"  parameters = {_jsonencode(parameters)}\n"
        "}\n"
    )


def _terraform_cf(parameters: dict, target: Target) -> str:
    """Cloud Foundry provider: cloudfoundry_service_credential_binding of type key or app (GUIDs)."""
    if target.cf_target == "app":
        label = _hcl_label(target.app)
        names = '  type             = "app"\n  service_instance = var.ias_instance_guid\n  app              = var.app_guid\n'
    else:
        label = _hcl_label(target.key_name)
        names = (
            f'  type             = "key"\n  name             = {_hcl_string(target.key_name)}\n'
            "  service_instance = var.ias_instance_guid\n"
        )
    return (
        f'resource "cloudfoundry_service_credential_binding" "{label}" {{\n'
        + names
        + f"  parameters = {_jsonencode(parameters)}\n"
        "}\n"
    )


def _jsonencode(parameters: dict) -> str:
    width = max(len(_hcl_string(key)) for key in parameters)
    body = "\n".join(f"    {_hcl_string(k):<{width}} = {_hcl_value(v)}" for k, v in parameters.items())
    return f"jsonencode({{\n{body}\n  }})"


def _hcl_label(name: str) -> str:
    label = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if not re.match(r"[A-Za-z_]", label):  # a Terraform name starts with a letter or underscore
        label = "_" + label
    return label


def _yaml_map(parameters: dict, indent: int) -> str:
    pad = " " * indent
    out = []
    for key, value in parameters.items():
        if isinstance(value, str) and "\n" in value:
            block = "\n".join(pad + "  " + line for line in value.split("\n"))
            out.append(f"{pad}{key}: |-\n{block}")  # literal block, no final newline
        else:
            out.append(f"{pad}{key}: {_yaml_scalar(value)}")
    return "\n".join(out) + "\n"


def _yaml_scalar(value) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    # A JSON string is a YAML double-quoted scalar, except that YAML has no surrogates: a character
    # beyond U+FFFF is one \U escape there, not JSON's pair of \u escapes.
    text = json.dumps(str(value), ensure_ascii=False)
    return re.sub(r"[^\x20-\x7e]", lambda m: _yaml_escape(ord(m.group())), text)


def _yaml_escape(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _hcl_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _hcl_string(str(value))


def _hcl_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("${", "$${").replace("%{", "%%{") + '"'


_RENDERERS = {
    "json": _json,
    "cf": _cf,
    "manifest": _manifest,
    "mta": _mta,
    "kyma": _kyma,
    "terraform": _terraform,
    "terraform-cf": _terraform_cf,
}


class ParameterError(ValueError):
    """Parameters IAS would refuse; the message says which and why."""


def x509_generated(key_length: int = 2048, validity: int = 30, app_identifier: str = "") -> dict:
    """IAS generates certificate and key at binding time (the key then sits in the binding)."""
    if key_length not in (2048, 4096):
        raise ParameterError("key-length must be 2048 or 4096.")
    if not 1 <= validity <= 30:
        raise ParameterError("validity must be 1 to 30 (validity-type DAYS).")
    if len(app_identifier) > 20:
        raise ParameterError("app-identifier must be at most 20 characters.")
    params = {"credential-type": "X509_GENERATED", "key-length": key_length, "validity": validity,
              "validity-type": "DAYS"}  # fmt: skip
    if app_identifier:
        params["app-identifier"] = app_identifier
    return params


def secret() -> dict:
    return {"credential-type": "SECRET"}
