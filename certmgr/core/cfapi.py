"""Read a Cloud Foundry landscape: every app binding and service key of the ``identity`` offering,
and what its credentials say. Plain data in and out, no Django; every call goes through outbound.

The calls, as the Cloud Controller v3 reference documents them (cloudfoundry/cloud_controller_ng,
docs/v3): the root document ``GET /`` names the login server (``links.login``), where the token
comes from (``POST /oauth/token``: the cf CLI's password grant with client ``cf`` and an empty
secret, or client credentials); then ``/v3/service_offerings?names=identity``,
``/v3/service_plans?service_offering_guids=``, ``/v3/service_instances?service_plan_guids=``
(narrowed by ``organization_guids``/``space_guids``), ``/v3/spaces?guids=&include=organization``,
``/v3/service_credential_bindings?service_instance_guids=&include=app`` and, per binding,
``/v3/service_credential_bindings/:guid/details`` (Admin, Admin Read-Only and Space Developer
only; anyone else gets 404). Every list follows ``pagination.next.href``.

Only GET requests reach the API: the portal reads, it never changes anything in Cloud Foundry.
The password, the client secret, the token and the credentials' secrets never appear in an
error, a log line or a repr; of the credentials only the identity facts are kept (the private
key of an X509_GENERATED binding only when the caller asks for keys).
"""

from __future__ import annotations

import base64
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode, urlsplit

from . import outbound
from .outbound import HttpPolicy, OutboundError

IDENTITY = "identity"
PER_PAGE = 100
MAX_PAGES = 200  # per listing: 20,000 resources at the default page size
MAX_INSTANCES = 5000
MAX_BINDINGS = 20000
GUID_BATCH = 50  # guids per filter, so URLs stay short
MAX_LOGINS = 3  # a token that expires mid-scan is renewed, but not forever
CREDENTIAL_TYPES = ("X509_GENERATED", "X509_PROVIDED", "X509_ATTESTED", "SECRET", "NONE")


class CfError(Exception):
    """The scan could not complete; ``code`` is stable, the message one line for people."""

    CONFIG, CREDENTIALS, HOST, API, UNREACHABLE, ANSWER, TOO_MANY, NOT_FOUND = (
        "config", "credentials", "refused_host", "api_error", "unreachable", "bad_answer", "too_many", "not_found",
    )  # fmt: skip

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class CfConfig:
    api_url: str
    username: str = ""
    password: str = field(default="", repr=False)
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    orgs: tuple[str, ...] = ()
    spaces: tuple[str, ...] = ()
    login_hosts: tuple[str, ...] = ()  # CERTMGR_CF_HOSTS: login servers beyond the API's siblings
    keep_keys: bool = False  # keep X509_GENERATED keys (CERTMGR_CF_STORE_KEYS)
    per_page: int = PER_PAGE


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
    return _Reader(config, policy).read()


def login_host_allowed(login_url: str, api_url: str, extra: tuple[str, ...] = ()) -> bool:
    """The API's own host, a sibling of it (``login.X`` for ``api.X``), or a host listed in ``extra``."""
    login = (urlsplit(login_url).hostname or "").lower().rstrip(".")
    api = (urlsplit(api_url).hostname or "").lower().rstrip(".")
    if not login or not api:
        return False
    if login == api or any(_matches(login, pattern) for pattern in extra):
        return True
    if _is_ip(login) or _is_ip(api):
        return False
    parent = api.split(".", 1)[1] if "." in api else ""
    # The parent must be a domain of its own (cf.example.com), never a bare suffix (com).
    return "." in parent and login.endswith("." + parent) and "." not in login[: -len(parent) - 1]


def identity_credentials(raw: dict, *, keep_key: bool) -> IdentityCredentials:
    """The identity facts of a binding's credentials; the secret and (unless kept) the key are dropped."""
    certificate = raw.get("certificate") if isinstance(raw.get("certificate"), str) else ""
    key = raw.get("key") if isinstance(raw.get("key"), str) else None
    stated = str(raw.get("credential-type") or "").upper()
    if stated not in CREDENTIAL_TYPES:
        stated = ""
    kind = stated or (
        "X509_GENERATED"
        if certificate and key
        else "X509_PROVIDED"
        if certificate
        else "SECRET"
        if raw.get("clientsecret")
        else "NONE"
    )
    domains = raw.get("domains") if isinstance(raw.get("domains"), list) else [raw.get("domain")]
    return IdentityCredentials(
        credential_type=kind,
        client_id=str(raw.get("clientid") or "")[:200],
        tenant_url=str(raw.get("url") or "").rstrip("/")[:200],
        domains=tuple(d for d in domains if isinstance(d, str) and 0 < len(d) <= 253)[:20],
        certificate=certificate[: 256 * 1024],
        key=key if keep_key and key and certificate else None,
        certificate_expires_at=str(raw.get("certificate_expires_at") or "")[:40],
    )


def _matches(host: str, pattern: str) -> bool:
    pattern = pattern.lower().strip().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Reader:
    def __init__(self, config: CfConfig, policy: HttpPolicy):
        api = config.api_url.rstrip("/")
        if urlsplit(api).scheme != "https" or not urlsplit(api).hostname:
            raise CfError(CfError.CONFIG, f"CERTMGR_CF_API must be an https URL, not {api!r}.")
        if not ((config.username and config.password) or (config.client_id and config.client_secret)):
            raise CfError(
                CfError.CONFIG,
                "No Cloud Foundry credentials: set CERTMGR_CF_USERNAME and CERTMGR_CF_PASSWORD, "
                "or CERTMGR_CF_CLIENT_ID and CERTMGR_CF_CLIENT_SECRET.",
            )
        self.config, self.api = config, api
        # https only, whatever development allows elsewhere; the API is trusted as configured.
        self.policy = replace(policy, allow_http_loopback=False)
        self._origin = _origin(api)
        self._pool = None
        self._token: str | None = None
        self._token_url = ""
        self._logins = 0

    def __repr__(self) -> str:  # never the token
        return f"<cf reader of {self.api}>"

    def read(self) -> Landscape:
        self._token_url = self._login_url().rstrip("/") + "/oauth/token"
        self._login()
        plans = self._identity_plans()
        if not plans:
            return Landscape(self.api, 0, ())
        instances = self._instances(plans, self._scope())
        names = self._space_names({i["space"] for i in instances.values()})
        found, pending = [], 0
        for batch in _chunks(sorted(instances), GUID_BATCH):
            for binding, app_name in self._bindings(batch, len(found)):
                if not _created(binding):
                    pending += 1
                    continue
                found.append(self._found(binding, app_name, instances, names))
        found.sort(
            key=lambda b: (b.org, b.space, b.instance_name, b.kind, b.name or b.app_name or "", b.guid)
        )
        return Landscape(self.api, len(instances), tuple(found), pending)

    # --- logging in ----------------------------------------------------------------------------

    def _login_url(self) -> str:
        document = self._json(self._send("GET", self.api + "/", None), "/")
        links = document.get("links") if isinstance(document.get("links"), dict) else {}
        link = links.get("login") or links.get("uaa")
        href = link.get("href") if isinstance(link, dict) else None
        if not isinstance(href, str) or not href:
            raise CfError(
                CfError.ANSWER, f"The root document of {self.api} names no login server (links.login)."
            )
        if urlsplit(href).scheme != "https":
            raise CfError(CfError.HOST, f"Refused the login server {href}: only https.")
        if not login_host_allowed(href, self.api, self.config.login_hosts):
            raise CfError(
                CfError.HOST,
                f"Refused the login server {urlsplit(href).hostname}: it is not a sibling of "
                f"{urlsplit(self.api).hostname}; list it in CERTMGR_CF_HOSTS if it is yours.",
            )
        return href

    def _login(self) -> None:
        self._logins += 1
        if self._logins > MAX_LOGINS:
            raise CfError(CfError.CREDENTIALS, "The Cloud Foundry API keeps refusing fresh tokens.")
        config = self.config
        if config.username:
            form = {"grant_type": "password", "username": config.username, "password": config.password}
            # The cf CLI's client: "cf" with an empty secret, in HTTP Basic.
            headers = {"Authorization": "Basic " + base64.b64encode(b"cf:").decode("ascii")}
        else:
            form = {
                "grant_type": "client_credentials",
                "client_id": config.client_id,
                "client_secret": config.client_secret,
            }
            headers = {}
        headers.update({"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
        response = self._send("POST", self._token_url, headers, urlencode(form).encode("utf-8"))
        self._token = self._token_from(response)

    def _token_from(self, response: outbound.Response) -> str:
        host = urlsplit(self._token_url).netloc
        if response.status in (400, 401):
            error = self._json(response, "/oauth/token", strict=False).get("error")
            if response.status == 401 or error in ("invalid_client", "invalid_grant", "unauthorized"):
                who = (
                    "CERTMGR_CF_USERNAME/PASSWORD" if self.config.username else "CERTMGR_CF_CLIENT_ID/SECRET"
                )
                raise CfError(
                    CfError.CREDENTIALS,
                    f"The login server {host} refused the credentials ({error or response.status}): check {who}.",
                )
        if response.status != 200:
            raise CfError(
                CfError.API, f"The login server {host} answered {response.status} to the token request."
            )
        token = self._json(response, "/oauth/token").get("access_token")
        if not isinstance(token, str) or not token:
            raise CfError(CfError.ANSWER, f"The login server {host} answered without an access token.")
        return token

    # --- reading -------------------------------------------------------------------------------

    def _identity_plans(self) -> list[str]:
        offerings = [r["guid"] for r, _ in self._list("/v3/service_offerings", {"names": IDENTITY})]
        if not offerings:
            return []
        query = {"service_offering_guids": ",".join(offerings[:GUID_BATCH])}
        return [r["guid"] for r, _ in self._list("/v3/service_plans", query)]

    def _scope(self) -> dict[str, str]:
        """The organization_guids/space_guids filters that CERTMGR_CF_ORGS/SPACES ask for."""
        scope: dict[str, str] = {}
        if self.config.orgs:
            orgs = self._named("/v3/organizations", self.config.orgs, {}, "CERTMGR_CF_ORGS", "organization")
            scope["organization_guids"] = ",".join(orgs)
        if self.config.spaces:
            spaces = self._named("/v3/spaces", self.config.spaces, scope, "CERTMGR_CF_SPACES", "space")
            scope["space_guids"] = ",".join(spaces)
        return scope

    def _named(self, path: str, names: tuple[str, ...], query: dict, setting: str, what: str) -> list[str]:
        found = list(self._list(path, {**query, "names": ",".join(names)}))
        missing = {n.lower() for n in names} - {str(r.get("name", "")).lower() for r, _ in found}
        if missing:
            raise CfError(
                CfError.NOT_FOUND,
                f"{setting}: no {what} named {', '.join(sorted(missing))} is visible to the technical user.",
            )
        return [r["guid"] for r, _ in found][:GUID_BATCH]

    def _instances(self, plans: list[str], scope: dict[str, str]) -> dict[str, dict]:
        instances: dict[str, dict] = {}
        for resource, _ in self._list(
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
            for resource, included in self._list("/v3/spaces", query):
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
        for resource, included in self._list("/v3/service_credential_bindings", query):
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
        return _text(self._get(f"{self.api}/v3/apps/{guid}").get("name"))  # not included: ask

    def _found(self, binding: dict, app_name, instances: dict, names: dict) -> FoundBinding:
        instance_guid = _relation(binding, "service_instance")
        instance = instances.get(instance_guid, {"name": "?", "space": ""})
        org, space = names.get(instance["space"], ("?", "?"))
        raw = self._get(
            f"{self.api}/v3/service_credential_bindings/{binding['guid']}/details", missing_ok=True
        )
        credentials, unreadable = None, ""
        if raw is None or not isinstance(raw.get("credentials"), dict):
            unreadable = "The technical user may not read these credentials (it needs Space Developer here)."
        else:
            credentials = identity_credentials(raw["credentials"], keep_key=self.config.keep_keys)
        kind = "key" if binding.get("type") == "key" else "app"
        name = binding.get("name") if isinstance(binding.get("name"), str) and binding.get("name") else None
        return FoundBinding(
            guid=binding["guid"], kind=kind, name=name, instance_guid=instance_guid,
            instance_name=instance["name"], org=org, space=space, app_guid=_relation(binding, "app") or None,
            app_name=app_name, credentials=credentials, unreadable=unreadable,
        )  # fmt: skip

    # --- the wire ------------------------------------------------------------------------------

    def _list(self, path: str, query: dict[str, str]) -> Iterator[tuple[dict, dict]]:
        """Each resource of a paginated list with the page's ``included``, following next.href."""
        url = f"{self.api}{path}?{urlencode({**query, 'per_page': str(self.config.per_page)})}"
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            if url in seen:
                raise CfError(CfError.ANSWER, f"The pagination of {path} leads back to a page already read.")
            seen.add(url)
            page = self._get(url)
            resources, pagination = page.get("resources"), page.get("pagination")
            if not isinstance(resources, list) or not isinstance(pagination, dict):
                raise CfError(CfError.ANSWER, f"{path} did not answer a paginated list.")
            included = page.get("included") if isinstance(page.get("included"), dict) else {}
            for resource in resources:
                if not isinstance(resource, dict) or not isinstance(resource.get("guid"), str):
                    raise CfError(CfError.ANSWER, f"{path} listed a resource without a guid.")
                yield resource, included
            following = pagination.get("next")
            if not following:
                return
            url = following.get("href") if isinstance(following, dict) else None
            if not isinstance(url, str) or _origin(url) != self._origin:
                raise CfError(
                    CfError.HOST, f"The next page of {path} is not on {self._origin}: not followed."
                )
        raise CfError(CfError.TOO_MANY, f"{path} has more than {MAX_PAGES} pages: narrow the scan with CERTMGR_CF_ORGS/SPACES.")  # fmt: skip

    def _get(self, url: str, *, missing_ok: bool = False) -> dict | None:
        path = urlsplit(url).path
        if _origin(url) != self._origin:  # the token goes to the configured API only
            raise CfError(CfError.HOST, f"Refused to send the token to {urlsplit(url).netloc}.")
        for _ in range(2):
            headers = {"Authorization": f"bearer {self._token}", "Accept": "application/json"}
            response = self._send("GET", url, headers)
            if response.status != 401:
                break
            self._login()  # the token expired mid-scan: one fresh one, then give up
        if response.status == 404 and missing_ok:
            return None
        if response.status == 401:
            raise CfError(CfError.CREDENTIALS, f"The Cloud Foundry API refused the token for {path}.")
        if response.status == 403:
            raise CfError(
                CfError.API, f"The technical user may not read {path} (403): it needs a role there."
            )
        if response.status != 200:
            raise CfError(
                CfError.API, f"The Cloud Foundry API answered {response.status}{_title(response)} for {path}."
            )
        return self._json(response, path)

    def _send(self, method: str, url: str, headers, body: bytes | None = None) -> outbound.Response:
        if self._pool is None:
            try:
                self._pool = outbound.pool(outbound.server_context(self.policy), maxsize=1)
            except OutboundError as exc:
                raise CfError(CfError.CONFIG, exc.diagnosis) from None
        try:
            return outbound.request(
                self._pool, method, url, self.policy, tenant=False, headers=headers, body=body
            )
        except OutboundError as exc:
            raise CfError(CfError.UNREACHABLE, exc.diagnosis) from None

    @staticmethod
    def _json(response: outbound.Response, path: str, *, strict: bool = True) -> dict:
        try:
            document = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            document = None
        if isinstance(document, dict):
            return document
        if strict:
            raise CfError(CfError.ANSWER, f"{path} did not answer a JSON object.")
        return {}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = parts.port or 443
    except ValueError:
        return ""
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _relation(resource: dict, name: str) -> str:
    relations = resource.get("relationships")
    relation = relations.get(name) if isinstance(relations, dict) else None
    data = relation.get("data") if isinstance(relation, dict) else None
    guid = data.get("guid") if isinstance(data, dict) else None
    return guid if isinstance(guid, str) else ""


def _text(value) -> str:
    return value[:255] if isinstance(value, str) else "?"


def _created(binding: dict) -> bool:
    """Only a binding whose creation succeeded has credentials (null: created before operations)."""
    operation = binding.get("last_operation")
    if not isinstance(operation, dict):
        return True
    return operation.get("type") in ("create", "update") and operation.get("state") == "succeeded"


def _title(response: outbound.Response) -> str:
    """The CF error title (e.g. CF-ServiceUnavailable), never its detail: that may quote input."""
    try:
        errors = json.loads(response.body).get("errors")
        title = errors[0].get("title") if isinstance(errors, list) and errors else None
    except (ValueError, AttributeError, TypeError):
        return ""
    return f" ({title[:60]})" if isinstance(title, str) and title.replace("-", "").isalnum() else ""
