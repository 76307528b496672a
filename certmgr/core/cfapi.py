"""A session with a Cloud Foundry API, through the one outbound client (core/outbound.py).

The root document ``GET /`` names the login server (``links.login``); the token comes from its
``POST /oauth/token`` as the cf CLI gets it (the password grant with client ``cf`` and an empty
secret, cloudfoundry/cli api/uaa/auth.go and util/configv3/defaults.go), or with client
credentials. Then GET requests only, with ``Authorization: bearer``; lists follow
``pagination.next.href`` (Cloud Controller v3, docs/v3 "Pagination").

The rules: https only (also in development), no redirects, timeouts and size caps from the
policy; the configured API is trusted as configured, also on a private address; the token goes to
that API's origin only; the login server must be the API's sibling or listed. Pages and token
renewals are bounded. The password, the client secret and the token never appear in an error or
a repr.
"""

from __future__ import annotations

import base64
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from . import outbound
from .outbound import HttpPolicy, OutboundError

PER_PAGE = 100
MAX_PAGES = 200  # per listing: 20,000 resources at the default page size
MAX_LOGINS = 3  # a token that expires mid-scan is renewed, but not forever


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


def _trusting(policy: HttpPolicy, url: str) -> HttpPolicy:
    host = urlsplit(url).hostname or ""
    return (
        policy
        if host in policy.outbound_allow
        else replace(policy, outbound_allow=(*policy.outbound_allow, host))
    )


class CfClient:
    """Logged in once (``login``), then ``get`` for one resource and ``list`` for a paginated list."""

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
        # https only, whatever development allows elsewhere; the API is trusted as configured, also
        # on a private address (the address guard of owner-set URLs does not apply to it).
        self.policy = _trusting(replace(policy, allow_http_loopback=False), api)
        self._origin = _origin(api)
        self._pool: Any = None  # outbound's connection pool
        self._token: str | None = None
        self._token_url = ""
        self._logins = 0

    def __repr__(self) -> str:  # never the token
        return f"<cf session with {self.api}>"

    def login(self) -> None:
        """Find the login server in the root document, check it, get a token."""
        login = self._login_url()
        self.policy = _trusting(self.policy, login)  # the API's sibling, or listed by the operator
        self._token_url = login.rstrip("/") + "/oauth/token"
        self._authenticate()

    # --- logging in ----------------------------------------------------------------------------

    def _login_url(self) -> str:
        document = self._json(self._send("GET", self.api + "/", None), "/")
        links = document.get("links")
        link = (links.get("login") or links.get("uaa")) if isinstance(links, dict) else None
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

    def _authenticate(self) -> None:
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

    # --- the wire ------------------------------------------------------------------------------

    def list(self, path: str, query: dict[str, str]) -> Iterator[tuple[dict, dict]]:
        """Each resource of a paginated list with the page's ``included``, following next.href."""
        url = f"{self.api}{path}?{urlencode({**query, 'per_page': str(self.config.per_page)})}"
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            if url in seen:
                raise CfError(CfError.ANSWER, f"The pagination of {path} leads back to a page already read.")
            seen.add(url)
            page = self.get(url)
            resources, pagination = page.get("resources"), page.get("pagination")
            if not isinstance(resources, list) or not isinstance(pagination, dict):
                raise CfError(CfError.ANSWER, f"{path} did not answer a paginated list.")
            included = page.get("included")
            included = included if isinstance(included, dict) else {}
            for resource in resources:
                guid = resource.get("guid") if isinstance(resource, dict) else None
                if not isinstance(guid, str) or not 0 < len(guid) <= 64:
                    raise CfError(CfError.ANSWER, f"{path} listed a resource without a usable guid.")
                yield resource, included
            following = pagination.get("next")
            if not following:
                return
            href = following.get("href") if isinstance(following, dict) else None
            if not isinstance(href, str) or _origin(href) != self._origin:
                raise CfError(
                    CfError.HOST, f"The next page of {path} is not on {self._origin}: not followed."
                )
            url = href
        raise CfError(CfError.TOO_MANY, f"{path} has more than {MAX_PAGES} pages: narrow the scan with CERTMGR_CF_ORGS/SPACES.")  # fmt: skip

    def get(self, url: str) -> dict:
        """One resource of the API; any answer but 200 is a CfError."""
        found = self.find(url)
        if found is None:
            raise CfError(CfError.API, f"The Cloud Foundry API answered 404 for {urlsplit(url).path}.")
        return found

    def find(self, url: str) -> dict | None:
        """Like ``get``, but None for a 404 (a binding's details the user may not read)."""
        path = urlsplit(url).path
        if _origin(url) != self._origin:  # the token goes to the configured API only
            raise CfError(CfError.HOST, f"Refused to send the token to {urlsplit(url).netloc}.")
        for _ in range(2):
            headers = {"Authorization": f"bearer {self._token}", "Accept": "application/json"}
            response = self._send("GET", url, headers)
            if response.status != 401:
                break
            self._authenticate()  # the token expired mid-scan: one fresh one, then give up
        if response.status == 404:
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


def _title(response: outbound.Response) -> str:
    """The CF error title (e.g. CF-ServiceUnavailable), never its detail: that may quote input."""
    try:
        errors = json.loads(response.body).get("errors")
        title = errors[0].get("title") if isinstance(errors, list) and errors else None
    except (ValueError, AttributeError, TypeError):
        return ""
    return f" ({title[:60]})" if isinstance(title, str) and title.replace("-", "").isalnum() else ""
