"""The service-binding parameters that hand a certificate to IAS, in each tool's own form.

X509_PROVIDED takes the certificate and nothing else (no private key, ever). IAS wants the PEM
with a newline right after the BEGIN line and right before the END line; JSON carries those
newlines as ``\\n``, YAML as a literal block, HCL as ``\\n`` escapes.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from .errors import InputError

FORMATS = ("json", "cf", "manifest", "mta", "kyma", "terraform")
_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.DOTALL)


@dataclass(frozen=True)
class Target:
    """Names to put into the rendered blocks; the defaults are placeholders to replace."""

    instance: str = "my-ias-instance"
    app: str = "my-app"
    key_name: str = "my-service-key"


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
    inline = shlex.quote(json.dumps(parameters, separators=(",", ":")))
    return (
        f"cf create-service-key {shlex.quote(target.instance)} {shlex.quote(target.key_name)} -c {inline}\n"
        f"cf bind-service {shlex.quote(target.app)} {shlex.quote(target.instance)} -c {inline}\n"
    )


def _manifest(parameters: dict, target: Target) -> str:
    head = f"applications:\n- name: {_yaml_scalar(target.app)}\n  services:\n  - name: {_yaml_scalar(target.instance)}\n"
    return head + "    parameters:\n" + _yaml_map(parameters, indent=6)


def _mta(parameters: dict, target: Target) -> str:
    # In mta.yaml, the binding parameters of a requires entry go under parameters.config.
    head = f"requires:\n  - name: {_yaml_scalar(target.instance)}\n    parameters:\n      config:\n"
    return head + _yaml_map(parameters, indent=8)


def _kyma(parameters: dict, target: Target) -> str:
    head = (
        "apiVersion: services.cloud.sap.com/v1\nkind: ServiceBinding\nmetadata:\n"
        f"  name: {_yaml_scalar(target.key_name)}\nspec:\n  serviceInstanceName: {_yaml_scalar(target.instance)}\n"
        "  parameters:\n"
    )
    return head + _yaml_map(parameters, indent=4)


def _terraform(parameters: dict, target: Target) -> str:
    width = max(len(key) for key in parameters) + 2
    body = "\n".join(f"    {_hcl_string(k):<{width}} = {_hcl_value(v)}" for k, v in parameters.items())
    name = re.sub(r"[^A-Za-z0-9_-]", "_", target.key_name)
    if not re.match(r"[A-Za-z_]", name):  # a Terraform name starts with a letter or underscore
        name = "_" + name
    return (
        f'resource "btp_subaccount_service_binding" "{name}" {{\n'
        "  subaccount_id       = var.subaccount_id\n"
        "  service_instance_id = var.ias_instance_id\n"
        f"  name                = {_hcl_string(target.key_name)}\n"
        f"  parameters = jsonencode({{\n{body}\n  }})\n"
        "}\n"
    )


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
