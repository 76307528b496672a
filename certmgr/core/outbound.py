"""Every outbound HTTP call goes through here: https only, allow-listed hosts, timeouts, size caps.

Built on urllib3 (the engine under requests) because the health check needs what requests
hides: one SSL context per client certificate, no proxy or netrc from the environment, no
redirects, and the exception chain intact so a failure can be named for what it is.
"""

from __future__ import annotations

import base64
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
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

DEFAULT_TENANT_HOSTS = ("*.accounts.ondemand.com", "*.accounts.cloud.sap", "*.accounts400.ondemand.com")


@dataclass(frozen=True)
class HttpPolicy:
    tenant_hosts: tuple[str, ...] = DEFAULT_TENANT_HOSTS
    ca_bundle: str | None = None  # PEM file of extra CAs trusted for tenant and backend TLS
    allow_http_loopback: bool = False  # development only
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_response_bytes: int = 1024 * 1024


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
    try:
        return (urllib3.util.parse_url(url).host or "").lower().strip("[]")
    except ValueError:
        return ""


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
    if not host:
        raise OutboundError("bad_url", f"{url!r} is not an absolute URL.")
    # Parsers disagree on backslashes, user info and blanks (urlsplit saw one host, urllib3 would
    # connect to another): such URLs are refused, and the host checked is the one urllib3 uses.
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


def pool(context: ssl.SSLContext, maxsize: int = 4) -> urllib3.PoolManager:
    return urllib3.PoolManager(ssl_context=context, maxsize=maxsize, retries=False)


def request(
    manager: urllib3.PoolManager,
    method: str,
    url: str,
    policy: HttpPolicy,
    *,
    tenant: bool,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Response:
    """One call: checked URL, no redirects, connect/read timeouts, body capped."""
    check_url(url, policy, tenant=tenant)
    timeout = urllib3.Timeout(connect=policy.connect_timeout, read=policy.read_timeout)
    try:
        raw = manager.request(
            method,
            url,
            body=body,
            headers=dict(headers or {}),
            redirect=False,
            retries=False,
            timeout=timeout,
            preload_content=False,
        )
        data = _read_capped(raw, url, policy)
    except OutboundError:
        raise
    except Exception as exc:  # noqa: BLE001 - every transport failure is named by describe()
        code, diagnosis = describe(exc, url, policy)
        raise OutboundError(code, diagnosis) from None
    if 300 <= raw.status < 400:
        where = raw.headers.get("Location", "nowhere")
        raise OutboundError(
            "redirect",
            f"{_host(url)} answered {raw.status} redirecting to {where}: not followed.",
            raw.status,
        )
    return Response(raw.status, raw.headers, data)


def _read_capped(raw, url: str, policy: HttpPolicy) -> bytes:
    deadline = time.monotonic() + policy.read_timeout
    chunks, size = [], 0
    for chunk in raw.stream(64 * 1024):
        size += len(chunk)
        if size > policy.max_response_bytes:
            raw.close()
            raise OutboundError(
                "too_large",
                f"{_host(url)} sent more than {policy.max_response_bytes:,} bytes; stopped reading.",
            )
        if time.monotonic() > deadline:
            raw.close()
            raise OutboundError(
                "timeout", f"{_host(url)} took longer than {policy.read_timeout:g} s to answer."
            )
        chunks.append(chunk)
    raw.release_conn()
    return b"".join(chunks)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: urllib3 keeps causes in ``reason`` and ``args``."""
    seen, todo = set(), [exc]
    while todo:
        current = todo.pop(0)
        # urllib3 keeps causes in ``reason``; on ssl.SSLError ``reason`` is a string.
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
        todo.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))


def describe(exc: BaseException, url: str, policy: HttpPolicy) -> tuple[str, str]:
    host = _host(url)
    causes = list(_causes(exc))
    # The most specific cause wins: urllib3's NewConnectionError is a ConnectTimeoutError too.
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return "dns", f"DNS lookup of {urlsplit(url).hostname} failed: the host name does not resolve."
        if isinstance(cause, ConnectionRefusedError):
            return "refused", f"Connection to {host} refused: nothing listens there."
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or getattr(cause, "reason", None) or "verification failed"
            return "untrusted_server", f"The server certificate of {host} is not trusted: {reason}."
    for cause in causes:
        if isinstance(cause, ReadTimeoutError):
            return "timeout", f"{host} did not answer within {policy.read_timeout:g} s."
        if isinstance(cause, ConnectTimeoutError) and not isinstance(cause, NewConnectionError):
            return "timeout", f"Connecting to {host} timed out after {policy.connect_timeout:g} s."
        if isinstance(cause, ssl.SSLError):
            return _tls_failure(cause, host)
        if isinstance(cause, RemoteDisconnected | ConnectionResetError | BrokenPipeError):
            return "closed", f"{host} closed the connection without an answer."
        if isinstance(cause, TimeoutError):
            return "timeout", f"{host} did not answer within {policy.read_timeout:g} s."
    for cause in causes:
        if isinstance(cause, NewConnectionError | ProtocolError | OSError):
            return "connection", f"Could not talk to {host}: {cause.__class__.__name__}."
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
