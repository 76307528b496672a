"""Microsoft Teams through a Workflows webhook: one Adaptive Card (Office 365 connectors are retired)."""

from __future__ import annotations

from datetime import UTC

from ...core.notices import Message
from ..models import NotificationChannel
from .base import HttpChannel, json_body, notice_header


class TeamsChannel(HttpChannel):
    """A Teams Workflows webhook ("Post to a channel when a webhook request is received")."""

    kind = NotificationChannel.Kind.TEAMS
    secret_fields = ("url",)

    def __init__(self, url: str):
        self.url = url

    def send(self, message: Message, recipient: str = "") -> None:
        headers = {"Content-Type": "application/json", **notice_header(message)}
        self._post(self.url, json_body(teams_payload(message)), headers)


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
    notice_line = (
        [{"type": "TextBlock", "text": f"notice {message.notice_id}", "isSubtle": True, "size": "Small"}]
        if message.notice_id
        else []
    )
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            title,
            {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts if v]},
            {"type": "TextBlock", "text": message.text, "wrap": True},
            *notice_line,
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
