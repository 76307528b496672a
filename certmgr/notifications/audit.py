"""How the audit log describes a notification channel: labels of what changed, never a URL or a secret."""

from __future__ import annotations

import hashlib

from ..access.auditdiff import audit_changes
from . import channels
from .models import NotificationChannel

Kind = NotificationChannel.Kind
KIND_NAMES = {
    Kind.EMAIL: "email",
    Kind.WEBHOOK: "webhook",
    Kind.SLACK: "Slack",
    Kind.TEAMS: "Teams",
    Kind.ALERT_NOTIFICATION: "Alert Notification",
}
CHANNEL_LABELS = {
    "include_owners": "mail owners",
    "addresses": "addresses",
    "url": "URL",
    "token_url": "token URL",
    "client_id": "client id",
    "secret": "signing secret",
    "client_secret": "client secret",
}
CHANNEL_PLAIN = frozenset({"name", "enabled", "include_owners"})


def channel_title(row: NotificationChannel) -> str:
    return f"{KIND_NAMES.get(row.kind, row.kind)} channel '{row.name}'"


def _digest(value) -> str:
    return hashlib.sha256(str(value).encode("utf-8")).hexdigest()


def channel_facts(row: NotificationChannel) -> dict:
    """What the audit log compares: plain settings as they are; URLs and secrets only as digests;
    the extra addresses as their number and a digest."""
    options = row.options or {}
    facts = {"name": row.name, "enabled": row.enabled}
    if row.kind == Kind.EMAIL:
        addresses = options.get("addresses") or []
        addresses = [addresses] if isinstance(addresses, str) else addresses
        facts["include_owners"] = options.get("include_owners", True)
        facts["addresses"] = (len(addresses), _digest(sorted(str(a).lower() for a in addresses)))
        return facts
    for name in ("url", "token_url", "client_id"):
        if name in options:
            facts[name] = _digest(options[name])
    try:
        sender = channels.channel_for(row)
    except channels.ChannelError:
        sender = None
    for name in ("url", "secret", "client_secret"):
        if sender is not None and hasattr(sender, name):
            facts[name] = _digest(getattr(sender, name))
    return facts


def channel_changes(
    row: NotificationChannel, before: dict, after: dict, *, generated: bool = False
) -> list[str]:
    """``name 'ops' → 'alerts'``, ``URL``, ``signing secret (generated)``, ``addresses (1 → 2)``."""
    labels = CHANNEL_LABELS | ({"url": "service URL"} if row.kind == Kind.ALERT_NOTIFICATION else {})
    counted = {name: (before.get(name), after.get(name)) for name in ("addresses",)}
    changes = audit_changes(
        {k: v for k, v in before.items() if k not in counted},
        {k: v for k, v in after.items() if k not in counted},
        labels=labels,
        plain=CHANNEL_PLAIN,
    )
    for name, (old, new) in counted.items():
        if old != new:
            changes.append(f"{labels[name]} ({old[0] if old else 0} → {new[0] if new else 0})")
    if generated:
        changes = [change + " (generated)" if change == labels["secret"] else change for change in changes]
    return changes


def channel_created_detail(row: NotificationChannel) -> str:
    """``webhook channel 'ops' created``; ``email channel 'team' created (owners included, 2 more addresses)``."""
    notes = []
    if row.kind == Kind.EMAIL:
        facts = channel_facts(row)
        count = facts["addresses"][0]
        notes += [
            "owners included" if facts["include_owners"] else "owners not included",
            f"{count} more address{'es' if count != 1 else ''}",
        ]
    if not row.enabled:
        notes.append("disabled")
    return f"{channel_title(row)} created" + (f" ({', '.join(notes)})" if notes else "")
