"""A Slack incoming webhook (Block Kit)."""

from __future__ import annotations

from ...core.notices import Message
from ..models import NotificationChannel
from .base import HttpChannel, json_body


class SlackChannel(HttpChannel):
    """An incoming webhook; its URL is the credential."""

    kind = NotificationChannel.Kind.SLACK
    secret_fields = ("url",)

    def __init__(self, url: str):
        self.url = url

    def send(self, message: Message, recipient: str = "") -> None:
        self._post(self.url, json_body(slack_payload(message)), {"Content-Type": "application/json"})


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
