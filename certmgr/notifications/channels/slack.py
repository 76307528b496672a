"""A Slack incoming webhook (Block Kit)."""

from __future__ import annotations

from ...core.notices import Message
from ..models import NotificationChannel
from .base import HttpChannel, json_body, notice_header


class SlackChannel(HttpChannel):
    """An incoming webhook; its URL is the credential."""

    kind = NotificationChannel.Kind.SLACK
    secret_fields = ("url",)

    def __init__(self, url: str):
        self.url = url

    def send(self, message: Message, recipient: str = "") -> None:
        headers = {"Content-Type": "application/json", **notice_header(message)}
        self._post(self.url, json_body(slack_payload(message)), headers)


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
    if message.notice_id:  # Slack keeps no custom field: a context line, for people and for deduplication
        notice = {"type": "mrkdwn", "text": f"notice {message.notice_id}"}
        blocks.append({"type": "context", "elements": [notice]})
    return {"text": message.subject, "blocks": blocks}
