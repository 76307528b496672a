"""Describing a change for the audit log.

A change is the difference of two snapshots of a row, taken before and after it: field labels,
old → new only for the fields a caller names as plain, many-to-many as who was added or removed.
Nothing else is written out: a URL or a secret appears in a detail at most as its field's label.
(AuditEvent.record cuts a detail to the column's length.)
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model

from ..models import Application

AUDIT_VALUE_MAX = 60
AUDIT_ITEMS_MAX = 5


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


@dataclass(frozen=True)
class AuditSpec:
    """What the audit log compares of a model: its fields, their labels, and which are shown
    old → new (the others only by their label)."""

    fields: tuple[str, ...]
    labels: dict[str, str] = dataclass_field(default_factory=dict)
    plain: frozenset[str] = frozenset()

    def snapshot(self, obj) -> dict:
        return audit_snapshot(obj, self.fields)

    def changes(self, before: dict, obj) -> list[str]:
        return audit_changes(before, self.snapshot(obj), labels=self.labels, plain=self.plain)
