"""Every outbound HTTP call goes through here: https only, allow-listed hosts, checked addresses,
timeouts, size caps.

Built on requests with its conveniences switched off where they would decide for us: each pool is
a Session carrying one SSLContext (one per client certificate) to which requests adds no CAs of
its own (certifi, REQUESTS_CA_BUNDLE); no proxy, netrc or CA settings from the environment; no
cookies kept; no redirect followed; no retry. Calls to URLs that owners set (backend, notification
channels) connect only to an address checked at connect time (addresses.py): the host is resolved
once, and the connection goes to that address, so a second DNS answer cannot point elsewhere.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import os
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import RemoteDisconnected
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import SplitResult, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.exceptions import ConnectTimeout, ReadTimeout
from requests.structures import CaseInsensitiveDict

from . import addresses

DEFAULT_TENANT_HOSTS = ("*.accounts.ondemand.com", "*.accounts.cloud.sap", "*.accounts400.ondemand.com")


@dataclass(frozen=True)
class HttpPolicy:
    tenant_hosts: tuple[str, ...] = DEFAULT_TENANT_HOSTS
    ca_bundle: str | None = None  # PEM file of extra CAs trusted for tenant and backend TLS
    allow_http_loopback: bool = False  # development only
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_response_bytes: int = 1024 * 1024
    # Calls that are not to the IAS tenant reach public addresses only, plus these hosts, *.domains,
    # addresses and CIDR networks (CERTMGR_OUTBOUND_ALLOW); loopback too with allow_loopback (debug).
    outbound_allow: tuple[str, ...] = ()
    allow_loopback: bool = False


class OutboundError(Exception):
    """A call that failed or was refused; ``code`` is stable, ``diagnosis`` is for people."""

    def __init__(self, code: str, diagnosis: str, status: int | None = None):
        super().__init__(diagnosis)
        self.code = code
        self.diagnosis = diagnosis
        self.status = status


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)


def host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    """``*.example.com`` matches any host under example.com (not example.com itself)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower().strip().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def _connect_host(url: str) -> str:
    """The host requests connects to: it parses URLs by urllib3's rules, which are not urlsplit's."""
    # A pure function of the URL, asked of the same few URLs by every check: kept for usual URLs
    # (a tenant's discovery document could name ever new long ones: those are parsed each time).
    return _remembered_host(url) if len(url) <= 512 else _requests_host(url)


@functools.lru_cache(maxsize=1024)
def _remembered_host(url: str) -> str:
    return _requests_host(url)


def _requests_host(url: str) -> str:
    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
    except (requests.RequestException, ValueError):
        return ""
    return (urlsplit(str(prepared.url)).hostname or "").lower()


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, policy: HttpPolicy, *, tenant: bool) -> None:
    """Refuse a URL before anything is sent. Tenant URLs must also match the allow-list."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.username is not None:  # the URL is not quoted: its password would be
        raise OutboundError(
            "bad_url",
            f"Refused the URL of {host or 'no host'}: a user name or password in a URL is ambiguous.",
        )
    if not host:
        raise OutboundError("bad_url", f"{url!r} is not an absolute URL.")
    # Parsers disagree on backslashes, user info and blanks (urlsplit saw one host, urllib3 under
    # requests would connect to another): such URLs are refused, and the host checked is requests'.
    if any(ch in parts.netloc for ch in "\\@ \t") or _connect_host(url) != host.lower():
        raise OutboundError("bad_url", f"Refused {url!r}: its host is ambiguous.")
    if parts.scheme == "http":
        if not (policy.allow_http_loopback and is_loopback(host)):
            raise OutboundError(
                "http_refused",
                f"Refused plain http to {host}: only https is allowed"
                + (" (http only to this machine, in development)." if is_loopback(host) else "."),
            )
    elif parts.scheme != "https":
        raise OutboundError("bad_url", f"Refused {parts.scheme or 'no'} scheme in {url!r}: only https.")
    if tenant and not host_matches(host, policy.tenant_hosts):
        raise OutboundError(
            "host_not_allowed",
            f"Refused {host}: not an allowed IAS tenant host ({', '.join(policy.tenant_hosts)}); "
            "extend the list with CERTMGR_TENANT_HOSTS.",
        )


def check_target(url: str, policy: HttpPolicy) -> None:
    """What a call to ``url`` (not a tenant's) would be refused for, checked now: the URL, and the
    addresses its host resolves to. For forms, at save time; the call checks again when it connects
    (a name may resolve otherwise by then). OutboundError(bad_url, http_refused,
    address_not_allowed) with the reason; a name that does not resolve now passes."""
    check_url(url, policy, tenant=False)
    parts = urlsplit(url)
    if host_matches(parts.hostname or "", policy.outbound_allow):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses.checked_address(
            parts.hostname or "", port, policy.outbound_allow, allow_loopback=policy.allow_loopback
        )
    except addresses.AddressRefused as refused:
        raise OutboundError("address_not_allowed", str(refused)) from None
    except OSError:
        pass  # not resolvable now: nothing internal to reach now either; the call checks again


def server_context(policy: HttpPolicy) -> ssl.SSLContext:
    """Verifies servers against the system's CAs plus ``policy.ca_bundle``.

    Each health check builds a context (its client certificate differs), so the system CAs are
    looked up lazily in OpenSSL's hashed directory where there is one: loading the whole CA file
    into every context costs ~20 ms.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname check and CERT_REQUIRED included
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    capath = ssl.get_default_verify_paths().capath
    if capath and os.path.isdir(capath):
        context.load_verify_locations(capath=capath)
    else:
        context.load_default_certs()
    if policy.ca_bundle:
        try:
            context.load_verify_locations(cafile=policy.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise OutboundError(
                "ca_bundle", f"The CA bundle {policy.ca_bundle} could not be read: {exc.__class__.__name__}."
            ) from None
    return context


def client_context(policy: HttpPolicy, certificate_pem: bytes, key_der: bytes) -> ssl.SSLContext:
    """A context presenting the client certificate; the key touches no disk (see _key_file)."""
    context = server_context(policy)
    with _key_file(_pem("PRIVATE KEY", key_der) + certificate_pem) as path:
        try:
            context.load_cert_chain(path)
        except ssl.SSLError:
            raise OutboundError("bad_key", "The stored key and certificate could not be loaded.") from None
    return context


@contextmanager
def _key_file(data: bytes) -> Iterator[str]:
    """A path OpenSSL can read the key from, gone when the block ends.

    ssl.SSLContext only loads keys from files. On Linux the "file" is a memfd: memory with a
    /proc path, never on disk. Elsewhere, a 0600 file in a private 0700 directory, removed in
    every case.
    """
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("certmgr-client-key", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="certmgr-") as directory:  # mode 0700
        path = os.path.join(directory, "client.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        try:
            yield path
        finally:
            os.unlink(path)


def _pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = b"\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return b"-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label.encode(), lines, label.encode())


class _Prepared(requests.PreparedRequest):
    guarded_by: HttpPolicy | None = None  # the policy whose address guard applies (non-tenant calls)


class Pool(requests.Session):
    """Connections for one SSLContext; ``clear()`` closes them (callers drop cached pools so)."""

    def __init__(self, context: ssl.SSLContext, maxsize: int):
        super().__init__()
        self.trust_env = False  # no proxy, netrc, REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE
        # Shared by every check of a tenant: a cookie set for one application's call is not sent on another's.
        self.cookies = RequestsCookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        self.headers["Accept-Encoding"] = "identity"  # the size cap counts what the server sends
        adapter = _Adapter(context, maxsize)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def prepare_request(self, request: requests.Request) -> _Prepared:
        # Session's own also merges cookies and netrc or URL credentials, all refused here, and
        # costs ~0.1 ms a call (as much as the rest of requests' work on a pooled connection).
        headers = CaseInsensitiveDict(self.headers)
        headers.update(request.headers)
        prepared = _Prepared()
        prepared.prepare(request.method, request.url, headers, data=request.data, cookies=self.cookies)
        return prepared

    def get_redirect_target(self, resp: requests.Response) -> None:
        # Never follow: and requests would read a 3xx's whole body, uncapped, to prepare the next hop.
        return None

    def clear(self) -> None:
        self.close()


class _Adapter(HTTPAdapter):
    """requests' transport with our SSLContext, and none of requests' own TLS or proxy settings."""

    def __init__(self, context: ssl.SSLContext, maxsize: int):
        self.context = context
        super().__init__(pool_maxsize=maxsize, max_retries=0)  # 0: Retry(0, read=False), no retry

    def cert_verify(self, conn, url, verify, cert) -> None:
        """requests would point the pool at certifi's bundle (or ``verify``) here, which urllib3 then
        loads into our context: the context alone decides whom to trust."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        parts = urlsplit(request.url)
        return {"scheme": parts.scheme.lower(), "host": parts.hostname, "port": parts.port}, {
            "ssl_context": self.context
        }

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        """The pool for the request's host, never a proxy; for a guarded call, for its checked address."""
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        policy = getattr(request, "guarded_by", None)
        if policy is not None:
            parts = urlsplit(request.url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            try:
                address = addresses.checked_address(
                    parts.hostname, port, policy.outbound_allow, allow_loopback=policy.allow_loopback
                )
            except addresses.AddressRefused as refused:
                raise OutboundError("address_not_allowed", str(refused)) from None
            # TLS (SNI, certificate check) and Host still name the host; the socket goes to the address.
            pool_kwargs["server_hostname"] = host_params["host"]
            request.headers["Host"] = _host_header(parts)
            host_params["host"] = address
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)


def _host_header(parts: SplitResult) -> str:
    """What http.client sends for a URL's host and port."""
    name = parts.hostname or ""
    host = f"[{name}]" if ":" in name else name
    default = 443 if parts.scheme == "https" else 80
    return f"{host}:{parts.port}" if parts.port and parts.port != default else host


def pool(context: ssl.SSLContext, maxsize: int = 4) -> Pool:
    return Pool(context, maxsize)


def request(
    manager: Pool,
    method: str,
    url: str,
    policy: HttpPolicy,
    *,
    tenant: bool,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Response:
    """One call: checked URL and address, no redirects, connect/read timeouts, body capped.

    Tenant calls go to a host of ``policy.tenant_hosts`` as it resolves; any other call connects to
    an address addresses.checked_address allows, unless ``policy.outbound_allow`` names its host.
    """
    check_url(url, policy, tenant=tenant)
    raw = None
    try:
        prepared = manager.prepare_request(
            requests.Request(method, url, headers=dict(headers or {}), data=body)
        )
        guarded = not tenant and not host_matches(urlsplit(url).hostname or "", policy.outbound_allow)
        prepared.guarded_by = policy if guarded else None  # read by _Adapter when it picks a connection
        raw = manager.send(
            prepared,
            allow_redirects=False,
            stream=True,
            timeout=(policy.connect_timeout, policy.read_timeout),
            verify=True,  # by our context: see _Adapter.cert_verify
            cert=None,
            proxies={},
        )
        if 300 <= raw.status_code < 400:
            where = raw.headers.get("Location", "nowhere")
            raise OutboundError(
                "redirect",
                f"{_host(url)} answered {raw.status_code} redirecting to {where}: not followed.",
                raw.status_code,
            )
        data = _read_capped(raw, url, policy)
    except OutboundError:
        raise
    except Exception as exc:  # noqa: BLE001 - every transport failure is named by describe()
        code, diagnosis = describe(exc, url, policy)
        raise OutboundError(code, diagnosis) from None
    finally:
        if raw is not None:
            raw.close()  # back to the pool when read to the end, else the connection is closed
    return Response(raw.status_code, raw.headers, data)


def _read_capped(raw: requests.Response, url: str, policy: HttpPolicy) -> bytes:
    deadline = time.monotonic() + policy.read_timeout
    chunks, size = [], 0
    for chunk in raw.iter_content(64 * 1024):
        size += len(chunk)
        if size > policy.max_response_bytes:
            raise OutboundError(
                "too_large",
                f"{_host(url)} sent more than {policy.max_response_bytes:,} bytes; stopped reading.",
            )
        if time.monotonic() > deadline:
            raise OutboundError(
                "timeout", f"{_host(url)} took longer than {policy.read_timeout:g} s to answer."
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: requests keeps urllib3's error in ``args``, urllib3
    keeps causes in ``reason`` and ``args``."""
    seen, todo = set(), [exc]
    while todo:
        current = todo.pop(0)
        # urllib3 keeps causes in ``reason``; on ssl.SSLError ``reason`` is a string.
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(
            cause
            for cause in (getattr(current, "reason", None), current.__cause__, current.__context__)
            if cause is not None
        )
        todo.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))


def describe(exc: BaseException, url: str, policy: HttpPolicy) -> tuple[str, str]:
    host = _host(url)
    causes = list(_causes(exc))
    # The most specific cause wins: requests wraps urllib3's errors, which wrap the socket's and ssl's.
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return "dns", f"DNS lookup of {urlsplit(url).hostname} failed: the host name does not resolve."
        if isinstance(cause, ConnectionRefusedError):
            return "refused", f"Connection to {host} refused: nothing listens there."
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or getattr(cause, "reason", None) or "verification failed"
            return "untrusted_server", f"The server certificate of {host} is not trusted: {reason}."
    for cause in causes:
        if isinstance(cause, ConnectTimeout):  # not a refusal: requests tells the two apart for us
            return "timeout", f"Connecting to {host} timed out after {policy.connect_timeout:g} s."
        if isinstance(cause, ssl.SSLError):
            return _tls_failure(cause, host)
        if isinstance(cause, RemoteDisconnected | ConnectionResetError | BrokenPipeError):
            return "closed", f"{host} closed the connection without an answer."
        if isinstance(cause, TimeoutError | ReadTimeout):
            return "timeout", f"{host} did not answer within {policy.read_timeout:g} s."
    failures = [cause for cause in causes if isinstance(cause, OSError)]
    if failures:  # the innermost: the socket's own error rather than requests' wrapper
        return "connection", f"Could not talk to {host}: {failures[-1].__class__.__name__}."
    return "unexpected_error", f"Calling {host} failed unexpectedly ({exc.__class__.__name__})."


def _tls_failure(error: ssl.SSLError, host: str) -> tuple[str, str]:
    reason = (getattr(error, "reason", None) or "").upper()
    if "ALERT_" in reason:
        alert = reason.split("ALERT_", 1)[1].replace("_", " ").lower()
        return "tls_alert", f"TLS handshake with {host} failed: the server sent the alert '{alert}'."
    if reason in {"UNEXPECTED_EOF_WHILE_READING", "EOF"} or "EOF" in reason:
        return "closed", f"{host} closed the connection during the TLS handshake."
    return (
        "tls",
        f"TLS handshake with {host} failed ({reason.replace('_', ' ').lower() or 'no reason given'}).",
    )
