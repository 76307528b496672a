"""Notification channels: one small class per kind behind ``send(message, recipient)``.

A channel renders a Message and delivers it; what to send, to whom and when is the engine's
business. Every failure is a ChannelError whose ``retryable`` says whether trying again later can
help, and whose text can be shown in the UI: Slack's and Teams' webhook URLs are credentials, so
errors name the receiving host only. The request bodies are built in ``channel_payloads``.

Sealed secrets (``NotificationChannel.sealed_secret``) are a JSON object, see ``seal_secret``:
webhook {"url", "secret"}, Slack and Teams {"url"}, Alert Notification {"client_secret"}.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import smtplib
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from .channel_payloads import (
    ans_event,
    ans_event_headers,
    ans_token_request,
    json_body,
    slack_payload,
    teams_payload,
    webhook_request,
)
from .core import outbound
from .core.notices import Message
from .core.outbound import HttpPolicy, OutboundError, Response
from .keys import VaultError, seal, vault
from .notify_models import NotificationChannel

log = logging.getLogger(__name__)
Kind = NotificationChannel.Kind

SECRET_FIELDS = {
    Kind.WEBHOOK: ("url", "secret"),
    Kind.SLACK: ("url",),
    Kind.TEAMS: ("url",),
    Kind.ALERT_NOTIFICATION: ("client_secret",),
}
USER_AGENT = "IAS-certificate-portal-notices"


class ChannelError(Exception):
    """A notice that was not delivered. The text is safe to show: no URLs, tokens or secrets."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


class Channel:
    def send(self, message: Message, recipient: str = "") -> None:
        raise NotImplementedError


# --- email --------------------------------------------------------------------------------------


class EmailChannel(Channel):
    """Django's mail through the configured SMTP server (settings EMAIL_*): text plus HTML."""

    def send(self, message: Message, recipient: str = "") -> None:
        if not recipient:
            raise ChannelError("No email address to send the notice to.", retryable=False)
        mail = EmailMultiAlternatives(message.subject, message.text, settings.DEFAULT_FROM_EMAIL, [recipient])
        if message.html:
            mail.attach_alternative(message.html, "text/html")
        server = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        try:
            mail.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (550, b""))
            raise ChannelError(
                f"The mail server {server} refused {recipient}: {code} {_reply(reply)}", retryable=code < 500
            ) from None
        except smtplib.SMTPResponseException as exc:  # sender or data refused, login failed
            raise ChannelError(
                f"The mail server {server} answered {exc.smtp_code} {_reply(exc.smtp_error)}",
                retryable=exc.smtp_code < 500,
            ) from None
        except OSError as exc:  # refused, timed out, disconnected, TLS failed (SMTPException included)
            raise ChannelError(
                f"Could not deliver mail through {server}: {exc.__class__.__name__}.", retryable=True
            ) from None
        except ValueError as exc:  # a header with a line break
            raise ChannelError(f"The mail could not be built: {exc}", retryable=False) from None
        log.debug("Mailed a %s notice through %s", message.event, server)


def _reply(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:200]


# --- HTTP channels --------------------------------------------------------------------------------


def http_policy() -> HttpPolicy:
    """The health check's timeouts and extra CAs; receivers are not IAS tenants."""
    return HttpPolicy(
        ca_bundle=settings.CERTMGR_CA_BUNDLE or None,
        allow_http_loopback=settings.CERTMGR_ALLOW_HTTP_LOOPBACK,
        connect_timeout=settings.CERTMGR_HEALTHCHECK_CONNECT_TIMEOUT,
        read_timeout=settings.CERTMGR_HEALTHCHECK_READ_TIMEOUT,
        outbound_allow=tuple(settings.CERTMGR_OUTBOUND_ALLOW),
        allow_loopback=settings.DEBUG,
    )


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
        host = _host(url)
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
    host = _host(url)
    if exc.code == "redirect":  # its diagnosis names the Location; the new URL is no concern of ours
        return ChannelError(
            f"{host} answered with a redirect (HTTP {exc.status}), which is not followed: check the URL.",
            retryable=False,
        )
    if exc.code in ("bad_url", "http_refused", "host_not_allowed"):  # their diagnosis quotes the URL
        return ChannelError(f"The URL of {host} is refused: only https URLs are allowed.", retryable=False)
    return ChannelError(_scrub(exc.diagnosis, url), retryable=exc.code not in PERMANENT_CODES)


def _host(url: str) -> str:
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


# --- generic webhook ------------------------------------------------------------------------------


class WebhookChannel(HttpChannel):
    """JSON POST signed like GitHub's: HMAC-SHA256 of the exact body bytes, timestamp inside the body."""

    def __init__(self, url: str, secret: str):
        self.url = url
        self.secret = secret

    def send(self, message: Message, recipient: str = "") -> None:
        body, headers = webhook_request(message, self.secret, int(time.time()))
        self._post(self.url, body, headers)


# --- Slack ----------------------------------------------------------------------------------------


class SlackChannel(HttpChannel):
    """An incoming webhook; its URL is the credential."""

    def __init__(self, url: str):
        self.url = url

    def send(self, message: Message, recipient: str = "") -> None:
        self._post(self.url, json_body(slack_payload(message)), {"Content-Type": "application/json"})


# --- Microsoft Teams --------------------------------------------------------------------------------


class TeamsChannel(HttpChannel):
    """A Teams Workflows webhook ("Post to a channel when a webhook request is received")."""

    def __init__(self, url: str):
        self.url = url

    def send(self, message: Message, recipient: str = "") -> None:
        self._post(self.url, json_body(teams_payload(message)), {"Content-Type": "application/json"})


# --- SAP Alert Notification service ---------------------------------------------------------------

EVENTS_PATH = "/cf/producer/v1/resource-events"

# Access tokens by (token URL, client id, SHA-256 of the secret): (token, usable until epoch seconds).
_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


class AlertNotificationChannel(HttpChannel):
    """Resource events with an OAuth2 client-credentials token, reused until shortly before it expires."""

    def __init__(self, url: str, token_url: str, client_id: str, client_secret: str):
        self.url = url.rstrip("/")
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self._key = (token_url, client_id, hashlib.sha256(client_secret.encode("utf-8")).hexdigest())

    def send(self, message: Message, recipient: str = "") -> None:
        body = json_body(ans_event(message, int(time.time())))
        token, fresh = self._token()
        response = self._post(self.url + EVENTS_PATH, body, ans_event_headers(token), check=False)
        if response.status == 401 and not fresh:  # revoked or expired early: one more try, new token
            with _tokens_lock:
                _tokens.pop(self._key, None)
            token, _ = self._token()
            response = self._post(self.url + EVENTS_PATH, body, ans_event_headers(token), check=False)
        check_status(response, _host(self.url))

    def _token(self) -> tuple[str, bool]:
        """The access token, and whether it was just fetched."""
        with _tokens_lock:
            token, until = _tokens.get(self._key, ("", 0.0))
        if token and time.time() < until:
            return token, False
        body, headers = ans_token_request(self.client_id, self.client_secret)
        response = self._post(self.token_url, body, headers, check=False)
        check_status(response, _host(self.token_url), refused="the token request")
        try:
            answer = json.loads(response.body)
            token, lifetime = str(answer["access_token"]), float(answer.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise ChannelError(
                f"{_host(self.token_url)} answered the token request without an access token: check the token URL.",
                retryable=False,
            ) from None
        with _tokens_lock:
            _tokens[self._key] = (token, time.time() + lifetime - min(60.0, lifetime / 2))
        return token, True


# --- from a NotificationChannel row ----------------------------------------------------------------


def seal_secret(kind: str, **values: str) -> bytes:
    """What ``NotificationChannel.sealed_secret`` holds for ``kind``: e.g. seal_secret("slack", url=...)."""
    fields = SECRET_FIELDS.get(kind, ())
    if set(values) != set(fields):
        raise ValueError(
            f"A {kind} channel keeps {', '.join(fields) or 'no secret'}, not {', '.join(values)}."
        )
    return seal(json.dumps(values).encode("utf-8"))


def channel_for(row: NotificationChannel) -> Channel:
    """The channel a row describes, its secret unsealed. A broken row is a permanent ChannelError."""
    options = row.options or {}
    if row.kind == Kind.EMAIL:
        return EmailChannel()
    secret = _unsealed(row)
    if row.kind == Kind.WEBHOOK:
        return WebhookChannel(secret["url"], secret["secret"])
    if row.kind == Kind.SLACK:
        return SlackChannel(secret["url"])
    if row.kind == Kind.TEAMS:
        return TeamsChannel(secret["url"])
    if row.kind == Kind.ALERT_NOTIFICATION:
        missing = [name for name in ("url", "token_url", "client_id") if not options.get(name)]
        if missing:
            raise ChannelError(f"The channel lacks its {', '.join(missing)}: edit it.", retryable=False)
        return AlertNotificationChannel(
            options["url"], options["token_url"], options["client_id"], secret["client_secret"]
        )
    raise ChannelError(f"Unknown channel kind {row.kind!r}.", retryable=False)


def _unsealed(row: NotificationChannel) -> dict:
    fields = SECRET_FIELDS.get(row.kind, ())
    if not row.sealed_secret:
        raise ChannelError(f"The channel has no stored {' and '.join(fields)}: edit it.", retryable=False)
    try:
        text = vault().decrypt(bytes(row.sealed_secret)).decode("utf-8")
    except (VaultError, UnicodeDecodeError):
        raise ChannelError(
            "The channel's secret could not be unsealed (was its encryption key removed?): edit the channel.",
            retryable=False,
        ) from None
    try:
        values = json.loads(text)
    except ValueError:
        values = text
    if isinstance(values, str) and len(fields) == 1:  # a bare URL or client secret
        values = {fields[0]: values}
    if not isinstance(values, dict) or not all(isinstance(values.get(f), str) and values[f] for f in fields):
        raise ChannelError(
            f"The channel's stored {' and '.join(fields)} are incomplete: edit it.", retryable=False
        )
    return values


def recipients(row: NotificationChannel) -> list[str]:
    """Email: the owners' addresses (owner groups' members too) unless excluded, plus extra ones.

    Other kinds have one recipient, the channel itself: [""].
    """
    if row.kind != Kind.EMAIL:
        return [""]
    options = row.options or {}
    found = []
    if options.get("include_owners", True):
        owners = get_user_model().objects.filter(
            Q(owned_applications=row.application_id) | Q(groups__owned_applications=row.application_id),
            is_active=True,
        )
        found += owners.exclude(email="").order_by("email").values_list("email", flat=True).distinct()
    extra = options.get("addresses") or []
    found += re.split(r"[,;\s]+", extra) if isinstance(extra, str) else extra
    unique = {}
    for address in (str(a).strip() for a in found):
        if address:
            unique.setdefault(address.lower(), address)
    return list(unique.values())


# --- the "send test notice" button -----------------------------------------------------------------


def test_message(application, kind: str) -> Message:
    """A test notice for ``application`` through a channel of ``kind``, with its next expiring certificate."""
    certificate = application.certificates.active().order_by("not_after").first()
    days_left = (certificate.not_after - timezone.now()).days if certificate else None
    context = {
        "application": application,
        "tenant": application.tenant,
        "kind_label": Kind(kind).label if kind in Kind.values else kind,
        "certificate": certificate,
        "expires_utc": certificate.not_after.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        if certificate
        else "",
        "days_left": days_left,
        "link": settings.CERTMGR_PORTAL_URL + application.get_absolute_url(),
    }
    return Message(
        event="test",
        subject=f"Test notice for {application.name} from the IAS certificate portal",
        text=render_to_string("certmgr/notice_email.txt", context),
        html=render_to_string("certmgr/notice_email.html", context),
        application=application.name,
        application_slug=application.slug,
        tenant=application.tenant,
        certificate_subject=certificate.subject if certificate else "",
        fingerprint=certificate.fingerprint if certificate else "",
        not_after=certificate.not_after if certificate else None,
        days_left=days_left,
        link=context["link"],
        severity="info",
    )


test_message.__test__ = False  # not a pytest test, whatever its name
