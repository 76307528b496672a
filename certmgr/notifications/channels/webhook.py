"""A generic webhook: JSON, signed with a per-channel secret (``X-Certmgr-Signature``)."""

from __future__ import annotations

import hashlib
import hmac
import time

from ...core.notices import Message
from ..models import NotificationChannel
from .base import HttpChannel, json_body, notice_header, utc


class WebhookChannel(HttpChannel):
    """JSON POST signed like GitHub's: HMAC-SHA256 of the exact body bytes, timestamp inside the body."""

    kind = NotificationChannel.Kind.WEBHOOK
    secret_fields = ("url", "secret")

    def __init__(self, url: str, secret: str):
        self.url = url
        self.secret = secret

    def send(self, message: Message, recipient: str = "") -> None:
        body, headers = webhook_request(message, self.secret, int(time.time()))
        self._post(self.url, body, {**headers, **notice_header(message)})


def webhook_payload(message: Message, timestamp: int) -> dict:
    return {
        "event": message.event,
        "subject": message.subject,
        "text": message.text,
        "application": {
            "name": message.application,
            "slug": message.application_slug,
            "tenant": message.tenant,
        },
        "certificate": {
            "subject": message.certificate_subject,
            "fingerprint": message.fingerprint,
            "not_after": utc(message.not_after) or None,
            "days_left": message.days_left,
        },
        "threshold": message.threshold,
        "severity": message.severity,
        "link": message.link,
        # Signed with the rest: a receiver rejects old timestamps, so a captured body cannot be replayed.
        "timestamp": timestamp,
        # The same in every delivery of this notice (at least once): a receiver may drop a repeat.
        "notice_id": message.notice_id,
    }


def webhook_signature(secret: str, body: bytes) -> str:
    """Signed like GitHub's: HMAC-SHA256 of the exact body bytes, hex, as "sha256=<digest>"."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def webhook_request(message: Message, secret: str, timestamp: int) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a webhook POST; the timestamp is inside the signed body too."""
    body = json_body(webhook_payload(message, timestamp))
    headers = {
        "Content-Type": "application/json",
        "X-Certmgr-Timestamp": str(timestamp),
        "X-Certmgr-Signature": webhook_signature(secret, body),
    }
    return body, headers
