"""How a channel is described on its application's page: recipients or target host, never a
secret or a URL (Slack's and Teams' URLs are their credential), and why it cannot send, if so."""

from __future__ import annotations

from dataclasses import dataclass

from . import channels
from .forms import host_of
from .models import NotificationChannel

Kind = NotificationChannel.Kind
RECIPIENTS_SHOWN = 10


@dataclass(frozen=True)
class ChannelRow:
    channel: NotificationChannel
    summary: str  # recipients or target host: never a secret or a URL
    problem: str = ""  # why it cannot send as configured


def describe(row: NotificationChannel) -> ChannelRow:
    if row.kind == Kind.EMAIL:
        options = row.options or {}
        found = channels.recipients(row)
        shown = ", ".join(found[:RECIPIENTS_SHOWN]) + (
            f" and {len(found) - RECIPIENTS_SHOWN} more" if len(found) > RECIPIENTS_SHOWN else ""
        )
        owners = "owners included" if options.get("include_owners", True) else "owners not included"
        if not found:
            return ChannelRow(row, f"no recipients ({owners})", "No email address to send to.")
        return ChannelRow(row, f"{len(found)} recipient{'s' if len(found) != 1 else ''} ({owners}): {shown}")
    try:
        sender = channels.channel_for(row)
    except channels.ChannelError as exc:
        return ChannelRow(row, "not usable", str(exc))
    if row.kind == Kind.WEBHOOK:
        return ChannelRow(row, f"URL set (host {host_of(sender.url)}), signing secret set")
    if row.kind == Kind.ALERT_NOTIFICATION:
        return ChannelRow(
            row,
            f"service host {host_of(sender.url)}, token host {host_of(sender.token_url)}, "
            f"client id {sender.client_id}, client secret set",
        )
    return ChannelRow(row, f"URL set (host {host_of(sender.url)})")
