"""Read a Cloud Foundry landscape: every app binding and service key of the ``identity`` offering,
and what its credentials say. Plain data in and out, no Django; the calls through core/cfapi.py.

As the Cloud Controller v3 reference documents them (cloudfoundry/cloud_controller_ng, docs/v3):
``/v3/service_offerings?names=identity``, ``/v3/service_plans?service_offering_guids=``,
``/v3/service_instances?service_plan_guids=`` (narrowed by ``organization_guids``/
``space_guids``), ``/v3/spaces?guids=&include=organization``,
``/v3/service_credential_bindings?service_instance_guids=&include=app`` and, per binding whose
creation succeeded, ``/v3/service_credential_bindings/:guid/details``: Admin, Admin Read-Only
and Space Developer only; anyone else gets 404 (service_credential_bindings_controller.rb), and the
binding is reported as unreadable. Of the credentials only the identity facts are kept (the
private key of an X509_GENERATED binding only when the caller asks for keys), never a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .cfapi import CfClient, CfConfig, CfError
from .outbound import HttpPolicy

IDENTITY = "identity"
MAX_INSTANCES = 5000
MAX_BINDINGS = 20000
GUID_BATCH = 50  # guids per filter, so URLs stay short
CREDENTIAL_TYPES = ("X509_GENERATED", "X509_PROVIDED", "X509_ATTESTED", "SECRET", "NONE")


@dataclass(frozen=True)
class IdentityCredentials:
    """What an identity binding's credentials say about its IAS application and certificate."""

    credential_type: str
    client_id: str
    tenant_url: str
    domains: tuple[str, ...] = ()
    certificate: str = ""  # PEM, leaf first
    key: str | None = field(default=None, repr=False)
    certificate_expires_at: str = ""

    def service_key(self) -> dict:
        """The credentials as a `cf service-key` document (what the portal's importer reads)."""
        credentials = {
            "clientid": self.client_id,
            "url": self.tenant_url,
            "domains": list(self.domains),
            "credential-type": self.credential_type,
            "certificate": self.certificate,
        }
        if self.certificate_expires_at:
            credentials["certificate_expires_at"] = self.certificate_expires_at
        if self.key:
            credentials["key"] = self.key
        return {"credentials": credentials}


@dataclass(frozen=True)
class FoundBinding:
    guid: str
    kind: str  # app | key
    name: str | None  # None for an app binding without a name
    instance_guid: str
    instance_name: str
    org: str
    space: str
    app_guid: str | None = None
    app_name: str | None = None
    credentials: IdentityCredentials | None = None
    unreadable: str = ""  # why there are no credentials


@dataclass(frozen=True)
class Landscape:
    api_url: str
    instances: int
    bindings: tuple[FoundBinding, ...]
    pending: int = 0  # bindings being created or deleted: their credentials are not served yet


def read_landscape(config: CfConfig, policy: HttpPolicy) -> Landscape:
    """Everything the configured user may see of the identity offering. Raises CfError."""
    return _Reader(CfClient(config, policy)).read()


def identity_credentials(raw: dict, *, keep_key: bool) -> IdentityCredentials:
    """The identity facts of a binding's credentials; the secret and (unless kept) the key are dropped."""
    certificate = _string(raw.get("certificate"))[: 256 * 1024]
    key = _string(raw.get("key")) or None
    stated = str(raw.get("credential-type") or "").upper()
    if stated in CREDENTIAL_TYPES:
        kind = stated
    elif certificate:
        kind = "X509_GENERATED" if key else "X509_PROVIDED"
    else:
        kind = "SECRET" if raw.get("clientsecret") else "NONE"
    domains = raw.get("domains")
    if not isinstance(domains, list):
        domains = [raw.get("domain")]
    return IdentityCredentials(
        credential_type=kind,
        client_id=str(raw.get("clientid") or "")[:200],
        tenant_url=str(raw.get("url") or "").rstrip("/")[:200],
        domains=tuple(d for d in domains if isinstance(d, str) and 0 < len(d) <= 253)[:20],
        certificate=certificate,
        key=key if keep_key and key and certificate else None,
        certificate_expires_at=str(raw.get("certificate_expires_at") or "")[:40],
    )


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Reader:
    def __init__(self, client: CfClient):
        self.client = client

    def read(self) -> Landscape:
        self.client.login()
        plans = self._identity_plans()
        if not plans:
            return Landscape(self.client.api, 0, ())
        instances = self._instances(plans, self._scope())
        names = self._space_names({i["space"] for i in instances.values()})
        found: list[FoundBinding] = []
        pending = 0
        for batch in _chunks(sorted(instances), GUID_BATCH):
            for binding, app_name in self._bindings(batch, len(found)):
                if not _created(binding):
                    pending += 1
                    continue
                found.append(self._found(binding, app_name, instances, names))
        found.sort(
            key=lambda b: (b.org, b.space, b.instance_name, b.kind, b.name or b.app_name or "", b.guid)
        )
        return Landscape(self.client.api, len(instances), tuple(found), pending)

    # --- reading -------------------------------------------------------------------------------

    def _identity_plans(self) -> list[str]:
        offerings = [r["guid"] for r, _ in self.client.list("/v3/service_offerings", {"names": IDENTITY})]
        if not offerings:
            return []
        query = {"service_offering_guids": ",".join(offerings[:GUID_BATCH])}
        return [r["guid"] for r, _ in self.client.list("/v3/service_plans", query)]

    def _scope(self) -> dict[str, str]:
        """The organization_guids/space_guids filters that CERTMGR_CF_ORGS/SPACES ask for."""
        scope: dict[str, str] = {}
        if self.client.config.orgs:
            orgs = self._named(
                "/v3/organizations", self.client.config.orgs, {}, "CERTMGR_CF_ORGS", "organization"
            )
            scope["organization_guids"] = ",".join(orgs)
        if self.client.config.spaces:
            spaces = self._named("/v3/spaces", self.client.config.spaces, scope, "CERTMGR_CF_SPACES", "space")
            scope["space_guids"] = ",".join(spaces)
        return scope

    def _named(self, path: str, names: tuple[str, ...], query: dict, setting: str, what: str) -> list[str]:
        found = list(self.client.list(path, {**query, "names": ",".join(names)}))
        missing = {n.lower() for n in names} - {str(r.get("name", "")).lower() for r, _ in found}
        if missing:
            raise CfError(
                CfError.NOT_FOUND,
                f"{setting}: no {what} named {', '.join(sorted(missing))} is visible to the technical user.",
            )
        return [r["guid"] for r, _ in found][:GUID_BATCH]

    def _instances(self, plans: list[str], scope: dict[str, str]) -> dict[str, dict]:
        instances: dict[str, dict] = {}
        for resource, _ in self.client.list(
            "/v3/service_instances", {"service_plan_guids": ",".join(plans), **scope}
        ):
            if len(instances) >= MAX_INSTANCES:
                raise CfError(CfError.TOO_MANY, f"More than {MAX_INSTANCES} identity instances: narrow the scan with CERTMGR_CF_ORGS/SPACES.")  # fmt: skip
            space = _relation(resource, "space")
            instances[resource["guid"]] = {"name": _text(resource.get("name")), "space": space}
        return instances

    def _space_names(self, guids: set[str]) -> dict[str, tuple[str, str]]:
        names = {}
        for batch in _chunks(sorted(g for g in guids if g), GUID_BATCH):
            query = {"guids": ",".join(batch), "include": "organization"}
            for resource, included in self.client.list("/v3/spaces", query):
                orgs = {
                    o.get("guid"): _text(o.get("name"))
                    for o in included.get("organizations", [])
                    if isinstance(o, dict)
                }
                names[resource["guid"]] = (
                    orgs.get(_relation(resource, "organization"), "?"),
                    _text(resource.get("name")),
                )
        return names

    def _bindings(self, instance_guids: list[str], so_far: int) -> Iterator[tuple[dict, str | None]]:
        query = {"service_instance_guids": ",".join(instance_guids), "include": "app"}
        count = so_far
        for resource, included in self.client.list("/v3/service_credential_bindings", query):
            count += 1
            if count > MAX_BINDINGS:
                raise CfError(CfError.TOO_MANY, f"More than {MAX_BINDINGS} identity bindings: narrow the scan with CERTMGR_CF_ORGS/SPACES.")  # fmt: skip
            yield resource, self._app_name(resource, included)

    def _app_name(self, binding: dict, included: dict) -> str | None:
        guid = _relation(binding, "app")
        if not guid:
            return None
        for app in included.get("apps", []):
            if isinstance(app, dict) and app.get("guid") == guid:
                return _text(app.get("name"))
        return _text(self.client.get(f"{self.client.api}/v3/apps/{guid}").get("name"))  # not included: ask

    def _found(self, binding: dict, app_name, instances: dict, names: dict) -> FoundBinding:
        instance_guid = _relation(binding, "service_instance")
        instance = instances.get(instance_guid, {"name": "?", "space": ""})
        org, space = names.get(instance["space"], ("?", "?"))
        raw = self.client.find(f"{self.client.api}/v3/service_credential_bindings/{binding['guid']}/details")
        credentials, unreadable = None, ""
        if raw is None or not isinstance(raw.get("credentials"), dict):
            unreadable = "The technical user may not read these credentials (it needs Space Developer here)."
        else:
            credentials = identity_credentials(raw["credentials"], keep_key=self.client.config.keep_keys)
        kind = "key" if binding.get("type") == "key" else "app"
        name = binding.get("name") if isinstance(binding.get("name"), str) and binding.get("name") else None
        return FoundBinding(
            guid=binding["guid"], kind=kind, name=name, instance_guid=instance_guid,
            instance_name=instance["name"], org=org, space=space, app_guid=_relation(binding, "app") or None,
            app_name=app_name, credentials=credentials, unreadable=unreadable,
        )  # fmt: skip


def _relation(resource: dict, name: str) -> str:
    relations = resource.get("relationships")
    relation = relations.get(name) if isinstance(relations, dict) else None
    data = relation.get("data") if isinstance(relation, dict) else None
    guid = data.get("guid") if isinstance(data, dict) else None
    return guid if isinstance(guid, str) else ""


def _string(value) -> str:
    return value if isinstance(value, str) else ""


def _text(value) -> str:
    return value[:255] if isinstance(value, str) else "?"


def _created(binding: dict) -> bool:
    """Only a binding whose creation succeeded has credentials (null: created before operations)."""
    operation = binding.get("last_operation")
    if not isinstance(operation, dict):
        return True
    return operation.get("type") in ("create", "update") and operation.get("state") == "succeeded"
