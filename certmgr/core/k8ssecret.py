"""The identity binding in a Kubernetes Secret, as `kubectl get secret NAME -o yaml` (or `-o json`) shows it.

The SAP BTP service operator (SAP/sap-btp-service-operator, README "Service Binding Secret Formats",
controllers/servicebinding_controller.go) writes a binding into a Secret in one of three layouts:
- by default one key per credential field (`clientid`, `url`, `certificate`, ...); values that are
  not strings are JSON text (`domains` is '["accounts.ondemand.com"]'); next to them the instance's
  `instance_name`, `instance_guid`, `plan`, `label`, `type`, `tags` and a `.metadata` key;
- with `spec.secretKey`, the credentials as one JSON object under that key;
- with `spec.secretRootKey`, everything of the default layout as one JSON object of strings under
  that key (with secretKey as well, that object holds the credentials JSON under the secretKey).
`data:` values are base64, `stringData:` values plain text (Kubernetes lets stringData win).

YAML is read with PyYAML's safe loader and without aliases: an alias is how a small YAML file
expands into a huge document ("billion laughs"), and kubectl never writes one. It also stops at
MAX_YAML_NODES values and MAX_YAML_DEPTH levels, so a hostile megabyte costs a fraction of a second.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

import yaml

from .errors import InputError

CREDENTIAL_FIELDS = frozenset({"certificate", "clientid", "credential-type"})
_YAML_START = re.compile(
    r"\A(?:(?:---|#[^\n]*)?[ \t]*\n)*(?:apiVersion|kind|metadata|data|stringData|items)[ \t]*:", re.M
)
_NESTING = 2  # secretRootKey holding a secretKey's JSON is the deepest layout
MAX_YAML_NODES = 5000  # kubectl's Secret has a few dozen (keys, metadata, labels, owner references)
MAX_YAML_DEPTH = 20
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where PyYAML has it: 50× faster


def looks_like_yaml(text: str) -> bool:
    return _YAML_START.match(text) is not None


def load_yaml(text: str) -> object:
    try:
        _check_events(text)
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader: no Python objects)
    except yaml.YAMLError as exc:
        # Never the library's text: its snippet quotes the input line, which may hold a key.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise InputError(
            InputError.CORRUPT, f"The input looks like YAML but is not valid YAML{where}."
        ) from None


def _check_events(text: str) -> None:
    """Aliases, node count and depth from the parser's events, before anything is built: libyaml's
    composer recurses in C, and a few thousand nested brackets would crash the process."""
    nodes = depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise InputError(
                InputError.CORRUPT,
                "The YAML uses an alias (*name): refused, as aliases can blow a small file up into a huge "
                "document. kubectl never writes them; paste its output as it is.",
            )
        if isinstance(event, yaml.NodeEvent):  # scalars, sequence and mapping starts
            nodes += 1
            depth += isinstance(event, yaml.CollectionStartEvent)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if nodes > MAX_YAML_NODES or depth > MAX_YAML_DEPTH:
            raise InputError(
                InputError.CORRUPT,
                f"The YAML is too large or nests too deeply for a Secret (at most {MAX_YAML_NODES} "
                f"values, {MAX_YAML_DEPTH} levels).",
            )


def is_secret(document: dict) -> bool:
    return document.get("kind") == "Secret" or (
        "apiVersion" in document and ("data" in document or "stringData" in document)
    )


def is_list(document: dict) -> bool:
    return document.get("kind") == "List" and isinstance(document.get("items"), list)


def credentials(secret: dict) -> dict:
    """The binding's credentials, whichever of the operator's layouts the Secret has."""
    fields = _fields(secret)
    found = _find(fields, _NESTING)
    if not found:
        raise InputError(
            InputError.NOT_A_CERTIFICATE,
            "This Kubernetes Secret holds no identity binding: no 'certificate', 'clientid' or "
            "'credential-type', neither as keys nor in a JSON value (secretKey, secretRootKey).",
        )
    if len(found) > 1:
        raise InputError(
            InputError.AMBIGUOUS,
            f"This Kubernetes Secret holds {len(found)} bindings' credentials; import one at a time.",
        )
    return _typed(found[0])


def secret_name(secret: dict) -> str:
    metadata = secret.get("metadata")
    return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""


def _fields(secret: dict) -> dict[str, str]:
    data, string_data = secret.get("data") or {}, secret.get("stringData") or {}
    if not isinstance(data, dict) or not isinstance(string_data, dict):
        raise InputError(InputError.CORRUPT, "The Secret's 'data' or 'stringData' is not a mapping of keys.")
    fields = {str(key): _decoded(str(key), value) for key, value in data.items()}
    for key, value in string_data.items():
        fields[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return fields


def _decoded(key: str, value: object) -> str:
    try:
        if not isinstance(value, str):
            raise ValueError
        return base64.b64decode("".join(value.split()), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise InputError(
            InputError.CORRUPT, f"The Secret's data key '{key[:100]}' is not base64-encoded UTF-8 text."
        ) from None


def _find(mapping: dict, depth: int) -> list[dict]:
    if CREDENTIAL_FIELDS & mapping.keys():
        return [mapping]
    if depth == 0:
        return []
    found = []
    for value in mapping.values():
        inner = _json_object(value)
        if inner is not None:
            found += _find(inner, depth - 1)
    return found


def _json_object(value: object) -> dict | None:
    if not isinstance(value, str) or not value.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(value)
    except json.JSONDecodeError:
        return None
    except RecursionError:
        raise _too_deep() from None
    return document if isinstance(document, dict) else None


def _typed(creds: dict) -> dict:
    """JSON text back to what the broker returned (`domains` is a list again)."""
    domains = creds.get("domains")
    if isinstance(domains, str):
        try:
            domains = json.loads(domains)
        except (json.JSONDecodeError, RecursionError):
            domains = [domains]
    return {**creds, "domains": domains} if domains is not None else dict(creds)


def _too_deep() -> InputError:
    return InputError(InputError.CORRUPT, "The input nests too deeply to be a binding.")
