"""Notification channels: one module per kind, each a small class behind ``send(message, recipient)``.

``KINDS`` maps a ``NotificationChannel.Kind`` to its class; ``channel_for`` builds the channel a
row describes, its secret unsealed. Sealed secrets (``NotificationChannel.sealed_secret``) are a
JSON object of the class's ``secret_fields``, e.g. webhook {"url", "secret"}, Slack and Teams
{"url"}, Alert Notification {"client_secret"}; see ``seal_secret``.
"""

from __future__ import annotations

import json

from ...inventory.keys import VaultError, seal, vault
from ..models import NotificationChannel
from .alert_notification import AlertNotificationChannel
from .base import Channel, ChannelError, scrub_secrets
from .email import EmailChannel, recipients
from .slack import SlackChannel
from .teams import TeamsChannel
from .webhook import WebhookChannel

KINDS: dict[str, type[Channel]] = {
    cls.kind: cls
    for cls in (EmailChannel, WebhookChannel, SlackChannel, TeamsChannel, AlertNotificationChannel)
}
SECRET_FIELDS = {kind: cls.secret_fields for kind, cls in KINDS.items() if cls.secret_fields}

__all__ = [
    "KINDS",
    "SECRET_FIELDS",
    "AlertNotificationChannel",
    "Channel",
    "ChannelError",
    "EmailChannel",
    "SlackChannel",
    "TeamsChannel",
    "WebhookChannel",
    "channel_for",
    "recipients",
    "scrub_secrets",
    "seal_secret",
]


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
    cls = KINDS.get(row.kind)
    if cls is None:
        raise ChannelError(f"Unknown channel kind {row.kind!r}.", retryable=False)
    options = row.options or {}
    missing = [name for name in cls.option_fields if not options.get(name)]
    if missing:
        raise ChannelError(f"The channel lacks its {', '.join(missing)}: edit it.", retryable=False)
    return cls.from_row(options, _unsealed(row) if cls.secret_fields else {})


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
