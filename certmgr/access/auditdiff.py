"""Describing a change for the audit log.

A change is the difference of two snapshots of a row, taken before and after it: field labels,
old → new only for the fields a caller names as plain, many-to-many as who was added or removed.
Nothing else is written out: a URL or a secret appears in a detail at most as its field's label.
(AuditEvent.record cuts a detail to the column's length.)
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model

from ..models import Application
from ..notifications import channels
from ..notifications.models import NotificationChannel

AUDIT_VALUE_MAX = 60
AUDIT_ITEMS_MAX = 5

APPLICATION_AUDIT_FIELDS = (
    "name",
    "slug",
    "tenant_url",
    "client_id",
    "domains",
    "backend_url",
    "backend_mtls",
    "notice_thresholds",
    "check_interval_minutes",
    "owners",
    "owner_groups",
    "notes",
)
APPLICATION_AUDIT_LABELS = {
    "tenant_url": "tenant URL",
    "client_id": "client id",
    "domains": "trusted domains",
    "backend_url": "backend URL",
    "backend_mtls": "backend mTLS",
    "check_interval_minutes": "check interval (minutes)",
}
# Shown old → new; the backend URL and the notes only by their label. A URL shown is its host.
APPLICATION_AUDIT_PLAIN = frozenset(
    {
        "name",
        "slug",
        "tenant_url",
        "client_id",
        "domains",
        "backend_mtls",
        "notice_thresholds",
        "check_interval_minutes",
    }
)


def audit_label(obj) -> str:
    """How the audit log names a related row: a user by user name, an application by slug."""
    if obj is None:
        return ""
    if isinstance(obj, get_user_model()):
        return obj.get_username()
    if isinstance(obj, Application):
        return obj.slug
    if obj._meta.label == "auth.Permission":
        return f"{obj.content_type.app_label}.{obj.codename}"
    return str(obj)


def audit_snapshot(obj, names) -> dict:
    """The values of ``names`` on ``obj`` for comparing: related rows by label, choices by display."""
    values = {}
    for name in names:
        field = obj._meta.get_field(name)
        if field.many_to_many:
            rows = getattr(obj, name).all() if obj.pk else []
            if obj.pk and field.related_model._meta.label == "auth.Permission":
                rows = rows.select_related("content_type")
            values[name] = frozenset(audit_label(row) for row in rows)
        elif field.many_to_one:
            values[name] = audit_label(getattr(obj, name)) if getattr(obj, field.attname) is not None else ""
        elif field.choices:
            values[name] = getattr(obj, f"get_{name}_display")()
        else:
            values[name] = getattr(obj, field.attname)
    return values


def audit_value(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value in (None, "", [], ()):
        return "none"
    if isinstance(value, list | tuple):
        text = ",".join(map(str, value))
    elif isinstance(value, str):
        text = (urlsplit(value).hostname or "?") if "://" in value else value
        return f"'{cut(text, AUDIT_VALUE_MAX)}'"
    else:
        text = str(value)
    return cut(text, AUDIT_VALUE_MAX)


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _audit_items(sign: str, items) -> list[str]:
    items = sorted(items)
    shown = [f"{sign}{item}" for item in items[:AUDIT_ITEMS_MAX]]
    if len(items) > AUDIT_ITEMS_MAX:
        shown.append(f"{sign}{len(items) - AUDIT_ITEMS_MAX} more")
    return shown


def audit_changes(before: dict, after: dict, *, labels=None, plain=frozenset()) -> list[str]:
    """What differs, one part per field: ``name 'a' → 'b'``, ``owners (+otto, -bob)``, ``notes``."""
    labels = labels or {}
    parts = []
    for name in dict.fromkeys([*before, *after]):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        label = labels.get(name, name.replace("_", " "))
        if isinstance(old, frozenset) and isinstance(new, frozenset):
            parts.append(
                f"{label} ({', '.join(_audit_items('+', new - old) + _audit_items('-', old - new))})"
            )
        elif name in plain:
            parts.append(f"{label} {audit_value(old)} → {audit_value(new)}")
        else:
            parts.append(label)
    return list(dict.fromkeys(parts))  # two fields may share a label (password1, password2)


def application_created_detail(app: Application) -> str:
    """``application 'Billing' (billing) created, tenant 'x.accounts.ondemand.com', owners: otto``."""
    facts = audit_snapshot(app, ("owners", "owner_groups"))
    parts = [f"application '{app.name}' ({app.slug}) created"]
    if app.tenant_url:
        parts.append(f"tenant {audit_value(app.tenant_url)}")
    for name, label in (("owners", "owners"), ("owner_groups", "owner groups")):
        if facts[name]:
            parts.append(f"{label}: {', '.join(sorted(facts[name]))}")
    return ", ".join(parts)


# --- a notification channel: labels of what changed, never a URL or a secret ----------------------

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
