"""Request bodies of the notification channels: a notice Message in, plain data out, no Django.

Each HTTP channel in ``channels`` renders a Message with one of these and posts the bytes
``json_body`` makes of it, with the headers built here; delivery, errors, tokens and the
channels' secrets stay there. Email needs no builder: the
Message already carries its subject, text and HTML.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import quote_plus, urlencode

from ...core.notices import Message


def _utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def json_body(payload: dict) -> bytes:
    """The bytes a channel posts (and a webhook signs): compact, ASCII-only JSON."""
    return json.dumps(payload, separators=(",", ":")).encode("ascii")


# --- generic webhook ------------------------------------------------------------------------------


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
            "not_after": _utc(message.not_after) or None,
            "days_left": message.days_left,
        },
        "threshold": message.threshold,
        "severity": message.severity,
        "link": message.link,
        # Signed with the rest: a receiver rejects old timestamps, so a captured body cannot be replayed.
        "timestamp": timestamp,
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


# --- Slack ----------------------------------------------------------------------------------------


def slack_payload(message: Message) -> dict:
    # Slack's mrkdwn treats &, < and > as markup; a section holds at most 3000 characters.
    text = message.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": message.subject[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
    ]
    if message.link:
        button = {"type": "button", "text": {"type": "plain_text", "text": "Open in the portal"}}
        blocks.append({"type": "actions", "elements": [{**button, "url": message.link}]})
    return {"text": message.subject, "blocks": blocks}


# --- Microsoft Teams --------------------------------------------------------------------------------

TEAMS_COLORS = {"info": "Default", "warning": "Warning", "error": "Attention", "critical": "Attention"}


def teams_payload(message: Message) -> dict:
    """A Workflows webhook message carrying one Adaptive Card."""
    facts = [
        ("Application", message.application),
        ("Tenant", message.tenant),
        ("Certificate", message.certificate_subject),
        (
            "Expires (UTC)",
            message.not_after.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if message.not_after else "",
        ),
        ("Days left", "" if message.days_left is None else str(message.days_left)),
    ]
    title = {
        "type": "TextBlock",
        "text": message.subject,
        "size": "Medium",
        "weight": "Bolder",
        "wrap": True,
        "color": TEAMS_COLORS.get(message.severity, "Default"),
    }
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            title,
            {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts if v]},
            {"type": "TextBlock", "text": message.text, "wrap": True},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Open in the portal", "url": message.link}]
        if message.link
        else [],
    }
    attachment = {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": None,
        "content": card,
    }
    return {"type": "message", "attachments": [attachment]}


# --- SAP Alert Notification service ---------------------------------------------------------------

ANS_EVENT_TYPES = {
    "threshold": "IASCertificateExpiring",
    "expired": "IASCertificateExpired",
    "resolved": "IASCertificateRenewed",
    "health_failed": "IASHealthCheckFailed",
    "health_recovered": "IASHealthCheckRecovered",
    "digest": "IASCertificateDigest",
    "test": "IASCertificatePortalTest",
}
ANS_SEVERITIES = {"info": "INFO", "warning": "WARNING", "error": "ERROR", "critical": "FATAL"}
ANS_NOTIFICATIONS = {"resolved", "health_recovered", "digest", "test"}  # good news, not alerts


def ans_event(message: Message, timestamp: int) -> dict:
    """A resource event for the service's producer API."""
    resource_tags = {"tenant": message.tenant, "fingerprint": message.fingerprint}
    tags = {
        # Expiring, expired and renewed events of a certificate belong together, as do failed and
        # recovered health checks of an application.
        "ans:correlationId": f"{message.application_slug}:{message.fingerprint or 'health'}",
        "ans:detailsLink": message.link,
        "event": message.event,
    }
    if message.threshold is not None:
        tags["threshold"] = str(message.threshold)
    return {
        "eventType": ANS_EVENT_TYPES.get(message.event, "IASCertificateNotice"),
        "eventTimestamp": timestamp,
        "severity": ANS_SEVERITIES.get(message.severity, "WARNING"),
        "category": "NOTIFICATION" if message.event in ANS_NOTIFICATIONS else "ALERT",
        "subject": message.subject,
        "body": message.text,
        "resource": {
            "resourceName": message.application_slug,
            "resourceType": "ias-application",
            "tags": {k: v for k, v in resource_tags.items() if v},
        },
        "tags": {k: v for k, v in tags.items() if v},
    }


def ans_event_headers(token: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": f"Bearer {token}",
    }


def ans_token_request(client_id: str, client_secret: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of an OAuth2 client-credentials token request."""
    # RFC 6749 §2.3.1: client id and secret are form-encoded before Basic encoding.
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    headers = {
        "Authorization": "Basic " + base64.b64encode(pair).decode("ascii"),
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
    }
    body = urlencode({"grant_type": "client_credentials"}).encode("ascii")
    return body, headers
