"""The rotation steps of each deploy tool, run as written against a model of what IAS and the
tools do (core/rotation_steps.py, no database).

The model holds what SAP's docs and tools say (domain.md): IAS takes a certificate once per tenant,
across one instance's bindings and keys; `cf bind-service` on a bound app answers "already bound"
and applies nothing; `cf push` applies a service's parameters only when it creates the binding;
a ServiceBinding cannot be updated (the operator's webhook refuses it); an MTA service key named
with ${timestamp} is created anew at each deploy and the old one is deleted once it is in place;
an unbind, a deleted key or ServiceBinding takes its certificate out of IAS.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest
import yaml

from certmgr.core import binding, rotation_steps
from certmgr.core.rotation_steps import PHASES, TOOLS, NewCertificate, names, new_name
from tests import certs

OLD = certs.issue("frontend-app (P000042)", key_slot=40, serial=0x4001)
NEW = certs.issue("frontend-app (P000042)", key_slot=41, serial=0x4002)
NAMES = names("frontend", app="frontend-app", instance="frontend-ias", key="frontend-key", namespace="shop",
              binding="frontend-ias-binding")  # fmt: skip
# How the application holds its old certificate before the rotation, per tool.
HOLDS = {"cf-key": "key", "cf-app": "app", "manifest": "app", "mta": "key", "kyma": "servicebinding",
         "terraform": "resource", "terraform-cf": "resource"}  # fmt: skip


def params(item: certs.Issued) -> dict:
    return binding.x509_provided([item.pem.decode("ascii")])


def cert_of(parameters: dict) -> str:
    return binding.certificate_value([parameters["certificate"]])


class Refused(AssertionError):
    """What the real tool or IAS would answer instead of doing what the step expects."""


class World:
    """IAS's registrations and the deploy tools' state, driven by the steps' commands and files."""

    def __init__(self, tool: str):
        self.registered: dict[str, str] = {}  # certificate → what holds it (a key, a binding, ...)
        self.bindings: dict[tuple[str, str], str] = {}  # (app, instance) → certificate
        self.keys: dict[tuple[str, str], str] = {}  # (instance, key) → certificate
        self.servicebindings: dict[str, str] = {}  # name → certificate
        self.resources: dict[str, str] = {}  # terraform resource label → certificate
        self.files: dict[str, str] = {}
        self.app_uses = cert_of(params(OLD))
        self.deploys = 0
        old, holds = cert_of(params(OLD)), HOLDS[tool]
        if holds == "key":
            self._key(NAMES.instance, NAMES.key if tool == "cf-key" else "frontend-key-1700000000", old)
        elif holds == "app":
            self._bind(NAMES.app, NAMES.instance, old)
        elif holds == "servicebinding":
            self._register(old, f"servicebinding {NAMES.binding}")
            self.servicebindings[NAMES.binding] = old
        else:
            self._register(old, f"resource {binding._hcl_label(NAMES.key)}")
            self.resources[binding._hcl_label(NAMES.key)] = old

    # --- IAS ---

    def _register(self, cert: str, holder: str) -> None:
        if cert in self.registered:
            raise Refused(
                f"IAS refuses the certificate for {holder}: {self.registered[cert]} holds it already"
            )
        self.registered[cert] = holder

    def _unregister(self, cert: str) -> None:
        self.registered.pop(cert, None)

    def _key(self, instance, key, cert):
        if (instance, key) in self.keys:
            raise Refused(f"service key {key} already exists")
        self._register(cert, f"service key {key}")
        self.keys[instance, key] = cert

    def _bind(self, app, instance, cert):
        if (app, instance) in self.bindings:
            raise Refused(f"{app} is already bound to {instance}: the parameters are not applied")
        self._register(cert, f"binding of {app}")
        self.bindings[app, instance] = cert

    # --- the tools ---

    def run(self, line: str, parameters: dict) -> None:
        words = shlex.split(line)
        handler = {"cf": self._cf, "kubectl": self._kubectl, "terraform": self._terraform}.get(words[0])
        if handler is not None:
            handler(words[1:], parameters)

    def _param(self, words: list[str], parameters: dict) -> str:
        value = words[words.index("-c") + 1]
        return cert_of(parameters if value == rotation_steps.PARAMS_FILE else json.loads(value))

    def _cf(self, words, parameters):
        command, args = words[0], [w for w in words[1:] if not w.startswith("-")]
        if command == "create-service-key":
            self._key(args[0], args[1], self._param(words, parameters))
        elif command == "bind-service":
            self._bind(args[0], args[1], self._param(words, parameters))
        elif command == "unbind-service":
            self._unregister(self.bindings.pop((args[0], args[1])))
        elif command == "delete-service-key":
            self._unregister(self.keys.pop((args[0], args[1])))
        elif command == "push":
            self._push(args[0])
        elif command in ("restage", "restart"):
            self.app_uses = self._credentials_of(args[0])
        elif command == "deploy" and "resume" in words:
            self._resume()
        elif command == "deploy":
            self._deploy()

    def _credentials_of(self, app: str) -> str:
        bound = [cert for (a, _), cert in self.bindings.items() if a == app]
        return bound[0] if bound else self.switched_to

    def _push(self, app):
        manifest = yaml.safe_load(self.files["manifest.yml"])
        for entry in manifest["applications"]:
            for service in entry["services"]:
                cert = cert_of(service["parameters"])
                if (entry["name"], service["name"]) in self.bindings:
                    continue  # an existing binding keeps its parameters: the new certificate is not registered
                self._bind(entry["name"], service["name"], cert)

    def _deploy(self):
        mta = yaml.safe_load(self.files["mta.yaml"])
        self.deploys += 1
        for resource in mta["resources"]:
            for key in resource.get("parameters", {}).get("service-keys", []):
                name = key["name"].replace("${timestamp}", f"deploy{self.deploys}")
                self._key(resource["name"], name, cert_of(key["config"]))
                self.idle_uses = cert_of(key["config"])

    def _resume(self):
        self.app_uses = self.idle_uses
        for instance, key in list(self.keys):
            if not key.endswith(f"deploy{self.deploys}"):  # the old key, once the new one is in place
                self._unregister(self.keys.pop((instance, key)))

    def _kubectl(self, words, parameters):
        if "apply" in words:
            document = yaml.safe_load(self.files[words[words.index("-f") + 1]])
            name = document["metadata"]["name"]
            if name in self.servicebindings:
                raise Refused("updating service bindings is not supported")
            self._register(cert_of(document["spec"]["parameters"]), f"servicebinding {name}")
            self.servicebindings[name] = cert_of(document["spec"]["parameters"])
        elif "delete" in words and "servicebinding" in words:
            self._unregister(self.servicebindings.pop(words[-1]))
        elif "edit" in words:
            self.app_uses = self.switched_to

    def _terraform(self, words, parameters):
        if words[0] != "apply":
            return
        wanted = {}
        for text in self.files.values():
            for label, body in re.findall(r'resource "[a-z_]+" "([^"]+)" \{(.*?)\n\}', text, re.S):
                wanted[label] = json.loads(re.search(r'"certificate"\s*=\s*(".*?")\n', body)[1])
        for label in set(self.resources) - set(wanted):
            self._unregister(self.resources.pop(label))
        for label, cert in wanted.items():
            if label in self.resources and self.resources[label] != cert:
                raise Refused(f"{label}: a changed parameters destroys the binding before creating it")
            if label not in self.resources:
                self._register(cert, f"resource {label}")
                self.resources[label] = cert


def walk(tool: str, rotation: rotation_steps.Rotation) -> list[tuple[str, dict]]:
    """Run every step of ``rotation`` in order: (phase, what IAS holds and the app uses after it)."""
    world = World(tool)
    world.switched_to = cert_of(params(NEW))
    if tool.startswith("terraform"):  # the configuration as it is: the old resource
        world.files["old.tf"] = binding.render(params(OLD), tool, binding.Target(key_name=NAMES.key))
    seen = []
    for step in rotation.steps:
        if step.file_name:
            world.files[step.file_name] = step.file_text
        if step.phase == "retire" and tool.startswith("terraform"):
            del world.files["old.tf"]  # "remove the old resource block"
        for line in step.commands.splitlines():
            world.run(line, params(NEW))
        if step.phase == "switch" and not step.commands:  # a switch done by hand, as the text says
            world.app_uses = world.switched_to
        seen.append((step.phase, {"registered": dict(world.registered), "app_uses": world.app_uses}))
    return seen


@pytest.mark.parametrize("tool", TOOLS)
def test_the_steps_never_bind_a_bound_app_nor_put_one_certificate_in_two_places(tool):
    """Run as written, the steps end with the new certificate registered once, in one key, binding
    or resource, the old one gone, and the application using the new one."""
    rotation = rotation_steps.rotation_steps(tool, NAMES, NewCertificate(NEW.fingerprint, params(NEW)))

    seen = walk(tool, rotation)  # a Refused on the way is the failure

    new = cert_of(params(NEW))
    last = seen[-1][1]
    assert list(last["registered"]) == [new]
    assert last["app_uses"] == new
    text = "\n".join(step.commands + step.file_text for step in rotation.steps)
    assert text.count(NEW.pem.decode().splitlines()[1]) == 1  # the certificate is in one place only
    if tool not in ("cf-app", "manifest"):
        assert "bind-service" not in text


@pytest.mark.parametrize("tool", TOOLS)
def test_the_order_is_register_verify_switch_verify_retire_and_any_gap_is_said(tool):
    rotation = rotation_steps.rotation_steps(tool, NAMES, NewCertificate(NEW.fingerprint, params(NEW)))

    seen = walk(tool, rotation)

    assert [phase for phase, _ in seen] == list(PHASES)
    old, new = cert_of(params(OLD)), cert_of(params(NEW))
    state = dict(seen)
    assert new in state["verify_new"]["registered"]  # the new one can be checked before the switch...
    assert state["verify_new"]["app_uses"] == old  # ...while the application still uses the old one
    no_gap = all(after["app_uses"] in after["registered"] for _, after in seen)
    assert no_gap == (rotation.gap == "")  # what the application uses stays registered, or the steps say so


def test_a_bind_on_the_bound_app_would_be_caught():
    """Control: the model refuses what cf refuses, so the walk above can fail."""
    rotation = rotation_steps.rotation_steps("cf-app", NAMES, NewCertificate(NEW.fingerprint, params(NEW)))
    register = rotation.steps[0]
    without_unbind = "\n".join(line for line in register.commands.splitlines() if "unbind" not in line)
    broken = rotation_steps.Rotation(rotation.tool, rotation.label, rotation.gap,
                                     (rotation_steps.Step("register", "", without_unbind), *rotation.steps[1:]),
                                     rotation.new_key, rotation.new_binding)  # fmt: skip

    with pytest.raises(Refused, match="already bound"):
        walk("cf-app", broken)


def test_names_not_given_are_guessed_from_the_slug_and_listed():
    guessed = names("billing", app="billing-srv")

    assert (guessed.app, guessed.instance, guessed.key, guessed.namespace, guessed.binding) == (
        "billing-srv", "billing-ias", "billing-ias-key", "default", "billing-ias",
    )  # fmt: skip
    assert guessed.guessed == ("instance", "key", "namespace", "binding")


def test_the_new_names_carry_the_new_certificate_and_replace_an_older_ones():
    assert new_name("frontend-key", "0123456789abcdef") == "frontend-key-01234567"
    assert new_name("frontend-key-89abcdef", "0123456789abcdef") == "frontend-key-01234567"
    assert new_name("frontend-key-next", "") == "frontend-key-next"
    assert len(new_name("x" * 80, "0123456789abcdef")) == 63  # a Kubernetes name


def test_the_steps_are_filled_with_the_applications_names_quoted_for_the_shell():
    odd = names("frontend", app="front;rm -rf ~", instance="ias$(id)")

    rotation = rotation_steps.rotation_steps("cf-app", odd, NewCertificate(NEW.fingerprint, params(NEW)))

    first = shlex.split(rotation.steps[0].commands.splitlines()[0])
    assert first == ["cf", "unbind-service", "front;rm -rf ~", "ias$(id)"]


def test_without_the_new_certificate_the_steps_point_at_the_rotation_pages_parameters():
    rotation = rotation_steps.rotation_steps("cf-key", NAMES, NewCertificate())

    assert rotation.steps[0].commands == "cf create-service-key frontend-ias frontend-key-next -c params.json"
    assert "--certificate FINGERPRINT" in rotation.steps[1].commands
