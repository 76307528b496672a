"""Making and revoking API tokens, audited: the one path behind the page and ``manage.py api_token``."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..access.roles import ADMIN, OWNER, role_of
from ..models import AuditEvent
from .models import ApiToken

CREATORS = (OWNER, ADMIN)  # who makes tokens on the page (the command may make one for anyone with a role)


def describe(row: ApiToken) -> str:
    """``cmp_1a2b3c4d 'deploy': write, frontend, expires 2026-09-01`` (never the token)."""
    access = "write" if row.write else "read-only"
    return f"{row.prefix} '{row.name}': {access}, {row.scope_text()}, expires {row.expires_at:%Y-%m-%d}"


def create(
    user,
    *,
    name: str,
    applications=(),
    write: bool,
    expires_days: int,
    actor=None,
    actor_label: str = "",
    remote_addr=None,
) -> tuple[ApiToken, str]:
    with transaction.atomic():
        row, token = ApiToken.issue(
            user, name=name, applications=applications, write=write, expires_days=expires_days
        )
        AuditEvent.objects.create(
            action=AuditEvent.Action.API_TOKEN_CREATED,
            actor=actor,
            actor_label=(actor_label or (actor.get_username() if actor else "system"))[:200],
            remote_addr=remote_addr,
            detail=f"{describe(row)} (for {user.get_username()}, {role_of(user) or 'no role'})"[:500],
        )
    return row, token


def revoke(row: ApiToken, *, actor=None, actor_label: str = "", remote_addr=None) -> bool:
    """Revoke ``row``; False if it already was."""
    with transaction.atomic():
        done = ApiToken.objects.filter(pk=row.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if done:
            AuditEvent.objects.create(
                action=AuditEvent.Action.API_TOKEN_REVOKED,
                actor=actor,
                actor_label=(actor_label or (actor.get_username() if actor else "system"))[:200],
                remote_addr=remote_addr,
                detail=f"{row.prefix} '{row.name}' of {row.user.get_username()}"[:500],
            )
    row.refresh_from_db()
    return bool(done)
