"""The steps of a rotation, per deploy tool, filled with the application's own names.

Binding parameters only count when a binding or service key is *created* (domain.md), so every
way here registers the new certificate under a new key, binding or resource; none runs
``cf bind-service`` on an app that is still bound. IAS takes a certificate once per tenant, so
the new certificate goes into exactly one registration. The order is always
register new → verify new → switch → verify → retire old; the two ways that re-create an app's
binding (cf-app, manifest) have a short gap, and say so.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from . import binding
from .binding import _yaml_map, _yaml_scalar

PHASES = {
    "register": "Register the new certificate",
    "verify_new": "Verify the new certificate",
    "switch": "Switch the application",
    "verify": "Verify",
    "retire": "Retire the old certificate",
}
TOOLS = {
    "cf-key": "cf CLI: a new service key",
    "cf-app": "cf CLI: the app's binding (unbind, bind, restage)",
    "manifest": "manifest.yml (cf push)",
    "mta": "MTA (mta.yaml, cf deploy)",
    "kyma": "Kyma (SAP BTP service operator)",
    "terraform": "Terraform (SAP BTP provider)",
    "terraform-cf": "Terraform (Cloud Foundry provider)",
}
DEFAULT_TOOL = "cf-key"
MTA_ENV_VAR = "IAS_CREDENTIALS"
PARAMS_FILE = "params.json"  # when the parameters are not known yet (a notice): the rotation page has it
_SUFFIX = re.compile(r"-[0-9a-f]{8}$")


@dataclass(frozen=True)
class Names:
    """Where the application runs; ``guessed`` lists the ones filled from its slug."""

    slug: str
    app: str
    instance: str
    key: str  # the service key / binding (or Terraform binding) that holds the certificate now
    namespace: str
    binding: str  # the ServiceBinding in use now (Kyma)
    guessed: tuple[str, ...] = ()


def names(slug: str, *, app="", instance="", key="", namespace="", binding="") -> Names:
    """The given names, the empty ones replaced by a guess from the slug (and listed in ``guessed``)."""
    given = {"app": app, "instance": instance, "key": key, "namespace": namespace, "binding": binding}
    guesses = {
        "app": slug,
        "instance": f"{slug}-ias",
        "key": f"{slug}-ias-key",
        "namespace": "default",
        "binding": f"{slug}-ias",
    }
    filled = {field: value or guesses[field] for field, value in given.items()}
    return Names(slug=slug, guessed=tuple(f for f, value in given.items() if not value), **filled)


def new_name(current: str, fingerprint: str, limit: int = 63) -> str:
    """``current`` with the new certificate's first 8 fingerprint digits instead of an older
    certificate's (or "-next" while the new certificate is not known)."""
    base = _SUFFIX.sub("", current.removesuffix("-next"))[: limit - 9].rstrip("-")
    return f"{base}-{fingerprint[:8] or 'next'}"


@dataclass(frozen=True)
class NewCertificate:
    """The certificate to rotate to; empty while it is still to come (an expiry notice's steps)."""

    fingerprint: str = ""
    parameters: dict | None = None  # None: the steps refer to params.json (from the rotation page)


@dataclass(frozen=True)
class Step:
    phase: str  # a key of PHASES
    text: str
    commands: str = ""  # shell lines, runnable as they are
    file_name: str = ""
    file_text: str = ""

    @property
    def title(self) -> str:
        return PHASES[self.phase]


@dataclass(frozen=True)
class Rotation:
    tool: str
    label: str
    gap: str  # "" when the old certificate works until the app has switched
    steps: tuple[Step, ...]
    new_key: str
    new_binding: str


def rotation_steps(tool: str, names: Names, new: NewCertificate) -> Rotation:
    """The steps for ``tool`` (a key of TOOLS) to rotate to ``new``."""
    ways = _Ways(names, new)
    steps, gap = getattr(ways, tool.replace("-", "_"))()
    return Rotation(tool, TOOLS[tool], gap, tuple(steps), ways.new_key, ways.new_binding)


class _Ways:
    def __init__(self, names: Names, new: NewCertificate):
        self.n, self.new = names, new
        self.new_key = new_name(names.key, new.fingerprint, limit=100)
        self.new_binding = new_name(names.binding, new.fingerprint)
        self.q = {
            field: shlex.quote(getattr(names, field)) for field in ("app", "instance", "key", "namespace")
        }

    # --- the steps every way shares ---

    def _inline(self) -> str:
        if self.new.parameters is None:
            return PARAMS_FILE
        return shlex.quote(json.dumps(self.new.parameters, separators=(",", ":")))

    def _parameters(self) -> dict:
        return self.new.parameters or {
            "credential-type": "X509_PROVIDED",
            "certificate": "<from the rotation page>",
        }

    def verify_new(self, extra: str = "") -> Step:
        return Step(
            "verify_new",
            "Check the new certificate against IAS while the application still uses the old one: "
            '"Run health check with this certificate" on the rotation page, or the command below.' + extra,
            f"python manage.py healthcheck {shlex.quote(self.n.slug)} "
            f"--certificate {self.new.fingerprint[:16] or 'FINGERPRINT'}",
        )

    def retire_after_unbind(self) -> Step:
        return Step(
            "retire",
            f"Nothing is left in IAS: the unbind in step 1 removed the old certificate. Remove the old "
            f"private key from where {self.n.app} kept it.",
        )

    def verify(self) -> Step:
        return Step(
            "verify",
            "Promote the new certificate on the rotation page: the portal then checks it as the "
            f"application's certificate at once. Check that {self.n.app}'s own calls get tokens.",
            f"python manage.py healthcheck {shlex.quote(self.n.slug)}",
        )

    # --- one method per tool: (steps, gap) ---

    def cf_key(self):
        q = self.q
        return [
            Step(
                "register",
                "Create a new service key with the new certificate, beside the one in use: parameters only "
                "count when a key is created, and IAS takes each certificate once.",
                f"cf create-service-key {q['instance']} {shlex.quote(self.new_key)} -c {self._inline()}",
            ),
            self.verify_new(),
            Step(
                "switch",
                f"Give {self.n.app} the new key's credentials and the new private key where it reads them "
                "(a key generated in the portal: download it on the certificate page), then restart it "
                "instance by instance:",
                f"cf restart {q['app']} --strategy rolling",
            ),
            self.verify(),
            Step(
                "retire",
                f"Delete the old service key {self.n.key}: IAS forgets the old certificate with it.",
                f"cf delete-service-key {q['instance']} {q['key']} -f",
            ),
        ], ""

    def cf_app(self):
        q = self.q
        gap = (
            f"A short gap: IAS drops the old certificate with the old binding (step 1), and {self.n.app} "
            "uses the new one only once restaged (step 3). For none, register the certificate through a "
            "new service key instead."
        )
        return [
            Step(
                "register",
                f'cf bind-service on a bound app answers "already bound" and applies nothing: unbind '
                f"{self.n.app} first, then bind it with the new certificate (have the new private key ready "
                "where the app reads it).",
                f"cf unbind-service {q['app']} {q['instance']}\n"
                f"cf bind-service {q['app']} {q['instance']} -c {self._inline()}",
            ),
            self.verify_new(),
            Step("switch", f"Restage {self.n.app} so it reads its new binding:", f"cf restage {q['app']}"),
            self.verify(),
            self.retire_after_unbind(),
        ], gap

    def manifest(self):
        q = self.q
        gap = (
            f"A short gap: IAS drops the old certificate with the old binding (step 1), and {self.n.app} "
            "uses the new one only once restaged (step 3)."
        )
        target = binding.Target(instance=self.n.instance, app=self.n.app)
        return [
            Step(
                "register",
                "Put the new parameters into manifest.yml. cf push applies a service's parameters only "
                "when it creates the binding: unbind first, then push without starting.",
                f"cf unbind-service {q['app']} {q['instance']}\ncf push {q['app']} --no-start",
                "manifest.yml",
                binding.render(self._parameters(), "manifest", target),
            ),
            self.verify_new(),
            Step("switch", f"Stage and start {self.n.app} with its new binding:", f"cf restage {q['app']}"),
            self.verify(),
            self.retire_after_unbind(),
        ], gap

    def mta(self):
        q = self.q
        key = _SUFFIX.sub("", self.n.key) + "-${timestamp}"
        return [
            Step(
                "register",
                f"A service key named with ${{timestamp}} is a new key at every deploy; {self.n.app} reads it "
                f"under the fixed name {MTA_ENV_VAR} (env-var-name). Deploy blue-green: the deployer creates "
                f"the new key, starts the new version of {self.n.app} on temporary routes with it and waits "
                "in its testing phase; the live version keeps the old key.",
                f"mbt build -t mta_archives --mtar {q['app']}.mtar\n"
                f"cf deploy mta_archives/{q['app']}.mtar --strategy blue-green",
                "mta.yaml",
                self._mta_yaml(key),
            ),
            self.verify_new(f" Try the new version of {self.n.app} on its temporary route too."),
            Step(
                "switch",
                "Resume the deployment (its output names the operation id): the productive routes move "
                "to the new version.",
                "cf deploy -i OPERATION_ID -a resume",
            ),
            self.verify(),
            Step(
                "retire",
                "The deployer deletes the old key once the new one is in place. The list should show only "
                "this deploy's key; delete a leftover with cf delete-service-key INSTANCE NAME -f.",
                f"cf service-keys {q['instance']}",
            ),
        ], ""

    def _mta_yaml(self, key: str) -> str:
        alias = f"{self.n.app}-ias-key"
        return (
            f"modules:\n  - name: {_yaml_scalar(self.n.app)}\n    requires:\n"
            f"      - name: {_yaml_scalar(alias)}\n        parameters:\n"
            f"          env-var-name: {MTA_ENV_VAR}\n"
            f"resources:\n  - name: {_yaml_scalar(self.n.instance)}\n"
            "    type: org.cloudfoundry.managed-service\n    parameters:\n"
            "      service: identity\n      service-plan: application\n      service-keys:\n"
            f"        - name: {_yaml_scalar(key)}\n          config:\n"
            + _yaml_map(self._parameters(), indent=12)
            + f"  - name: {_yaml_scalar(alias)}\n    type: org.cloudfoundry.existing-service-key\n"
            f"    parameters:\n      service-name: {_yaml_scalar(self.n.instance)}\n"
            f"      service-key-name: {_yaml_scalar(key)}\n"
        )

    def kyma(self):
        n, q = self.n, self.q
        new = shlex.quote(self.new_binding)
        return [
            Step(
                "register",
                f"A ServiceBinding cannot be updated (the operator refuses it): create one under a new name "
                f"beside {n.binding}, with its own secret. (The operator's credentialsRotationPolicy re-creates "
                "a binding from the same parameters, so it cannot bring a new provided certificate.)",
                f"kubectl apply -n {q['namespace']} -f servicebinding-{self.new_binding}.yaml\n"
                f"kubectl wait -n {q['namespace']} servicebinding/{new} --for=condition=Ready --timeout=5m",
                f"servicebinding-{self.new_binding}.yaml",
                self._servicebinding(),
            ),
            self.verify_new(),
            Step(
                "switch",
                f"Point the Deployment {n.app} at the secret {self.new_binding} instead of {n.binding} (the "
                "volume's secretName, or envFrom / secretKeyRef), with the new private key; saving rolls it out:",
                f"kubectl -n {q['namespace']} edit deployment/{q['app']}\n"
                f"kubectl -n {q['namespace']} rollout status deployment/{q['app']}",
            ),
            self.verify(),
            Step(
                "retire",
                "Delete the old ServiceBinding: the operator deletes the binding (IAS forgets the old "
                "certificate) and its secret.",
                f"kubectl -n {q['namespace']} delete servicebinding {shlex.quote(n.binding)}",
            ),
        ], ""

    def _servicebinding(self) -> str:
        return (
            "apiVersion: services.cloud.sap.com/v1\nkind: ServiceBinding\nmetadata:\n"
            f"  name: {_yaml_scalar(self.new_binding)}\n  namespace: {_yaml_scalar(self.n.namespace)}\n"
            f"spec:\n  serviceInstanceName: {_yaml_scalar(self.n.instance)}\n"
            f"  secretName: {_yaml_scalar(self.new_binding)}\n  parameters:\n"
            + _yaml_map(self._parameters(), indent=4)
        )

    def terraform(self):
        return self._terraform("terraform", "btp_subaccount_service_binding")

    def terraform_cf(self):
        return self._terraform("terraform-cf", "cloudfoundry_service_credential_binding")

    def _terraform(self, fmt: str, resource: str):
        target = binding.Target(instance=self.n.instance, app=self.n.app, key_name=self.new_key)
        old = f"{resource}.{binding._hcl_label(self.n.key)}"
        return [
            Step(
                "register",
                "Add a second binding resource with the new certificate under a new name, and leave the "
                f"old one ({old}) as it is: a changed parameters replaces a binding, destroying it before "
                "the new one exists.",
                "terraform plan\nterraform apply",
                f"{self.new_key}.tf",
                binding.render(self._parameters(), fmt, target),
            ),
            self.verify_new(),
            Step(
                "switch",
                f"Give {self.n.app} the new binding's credentials and the new private key where it reads "
                "them, then restart it.",
            ),
            self.verify(),
            Step(
                "retire",
                f"Remove the old resource block ({old}) from the configuration; apply destroys the old "
                "binding, and IAS forgets the old certificate with it.",
                "terraform plan\nterraform apply",
            ),
        ], ""
