"""What every channel shares: the one-method base, the error type, and the HTTP delivery.

A channel renders a Message and delivers it; what to send, to whom and when is the ledger's
business. Every failure is a ChannelError whose ``retryable`` says whether trying again later can
help, and whose text can be shown in the UI: Slack's and Teams' webhook URLs are credentials, so
errors name the receiving host only.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import urlsplit

from ...core import outbound
from ...core.notices import Message
from ...core.outbound import OutboundError, Response
from ...lib.policy import http_policy

log = logging.getLogger(__name__)

USER_AGENT = "IAS-certificate-portal-notices"


class ChannelError(Exception):
    """A notice that was not delivered. The text is safe to show: no URLs, tokens or secrets."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


class Channel:
    """One kind of channel. ``secret_fields`` are sealed (``NotificationChannel.sealed_secret``),
    ``option_fields`` are plain settings (``NotificationChannel.options``) the kind needs."""

    kind: ClassVar[str]
    secret_fields: ClassVar[tuple[str, ...]] = ()
    option_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_row(cls, options: dict, secret: dict) -> Channel:
        return cls(
            **{name: options[name] for name in cls.option_fields},
            **{name: secret[name] for name in cls.secret_fields},
        )

    def send(self, message: Message, recipient: str = "") -> None:
        raise NotImplementedError


def utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def notice_header(message: Message) -> dict[str, str]:
    """The header every HTTP delivery carries: the notice's id, the same in each delivery of it."""
    return {"X-Certmgr-Notice-Id": message.notice_id} if message.notice_id else {}


def json_body(payload: dict) -> bytes:
    """The bytes a channel posts (and a webhook signs): compact, ASCII-only JSON."""
    return json.dumps(payload, separators=(",", ":")).encode("ascii")


# Outcomes a retry cannot change: the configuration (URL, CA bundle) must be fixed first.
PERMANENT_CODES = {
    "bad_url",
    "http_refused",
    "host_not_allowed",
    "address_not_allowed",
    "ca_bundle",
    "untrusted_server",
    "too_large",
}


class HttpChannel(Channel):
    def _post(self, url: str, body: bytes, headers: Mapping[str, str], *, check: bool = True) -> Response:
        policy = http_policy()
        host = host_of(url)
        headers = {"User-Agent": USER_AGENT, **headers}
        with _hidden_in_logs(url):
            try:
                manager = outbound.pool(outbound.server_context(policy), maxsize=1)
                response = outbound.request(
                    manager, "POST", url, policy, tenant=False, headers=headers, body=body
                )
            except OutboundError as exc:
                raise _transport_error(exc, url) from None
        log.debug("POST to %s answered HTTP %s", host, response.status)
        if check:
            check_status(response, host)
        return response


def check_status(response: Response, host: str, refused: str = "the notice") -> None:
    """2xx is delivered; 408, 429 and 5xx may pass later; any other answer will not."""
    status = response.status
    if 200 <= status < 300:
        return
    detail = f"HTTP {status}{_short_reason(response.body)}"
    if status in (408, 429) or status >= 500:
        raise ChannelError(f"{host} could not take {refused} now ({detail}).", retryable=True)
    raise ChannelError(f"{host} refused {refused} ({detail}).", retryable=False)


def _short_reason(body: bytes) -> str:
    """Slack answers errors with a word ("no_service"): worth showing, anything longer is not."""
    text = body[:60].decode("ascii", "replace").strip()
    return f": {text}" if re.fullmatch(r"[a-z_]{2,40}", text) else ""


def _transport_error(exc: OutboundError, url: str) -> ChannelError:
    host = host_of(url)
    if exc.code == "redirect":  # its diagnosis names the Location; the new URL is no concern of ours
        return ChannelError(
            f"{host} answered with a redirect (HTTP {exc.status}), which is not followed: check the URL.",
            retryable=False,
        )
    if exc.code in ("bad_url", "http_refused", "host_not_allowed"):  # their diagnosis quotes the URL
        return ChannelError(f"The URL of {host} is refused: only https URLs are allowed.", retryable=False)
    return ChannelError(_scrub(exc.diagnosis, url), retryable=exc.code not in PERMANENT_CODES)


def host_of(url: str) -> str:
    return urlsplit(url).hostname or "the receiver"


def _secret_parts(url: str) -> list[str]:
    """The URL, and its path and query as urllib3 logs them, when there is more than a slash."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return [part for part in (url, target, parts.path, parts.query) if len(part) > 1]


def _scrub(text: str, url: str) -> str:
    for part in _secret_parts(url):
        text = text.replace(part, "…")
    return text


def scrub_secrets(text: str, sender) -> str:
    """``text`` without the channel's URLs (their paths and queries too) or secrets, for the audit log."""
    for name in ("url", "token_url"):
        text = _scrub(text, getattr(sender, name, "") or "")
    for name in ("secret", "client_secret"):
        secret = getattr(sender, name, "") or ""
        if len(secret) > 1:
            text = text.replace(secret, "…")
    return text


_local = threading.local()


@contextmanager
def _hidden_in_logs(url: str) -> Iterator[None]:
    _local.url = url
    try:
        yield
    finally:
        _local.url = None


class _HideWebhookPaths(logging.Filter):
    """urllib3 logs every request's path at DEBUG: for Slack and Teams the path is the credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        url = getattr(_local, "url", None)
        if url and isinstance(record.args, tuple):
            record.args = tuple(_scrub(arg, url) if isinstance(arg, str) else arg for arg in record.args)
        return True


for _name in ("urllib3.connectionpool", "urllib3.poolmanager"):
    logging.getLogger(_name).addFilter(_HideWebhookPaths())
