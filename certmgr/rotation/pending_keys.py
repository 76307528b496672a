"""Starting a rotation in the portal: a new key (sealed at once) and the CSR to have signed.

The certificate comes back through the one storing path (inventory/importer.py), which stores
it with its pending key when the public keys match. Every step is audited; the key itself is
never shown, logged or returned.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from ..core import csr
from ..inventory import keys
from ..models import Application, AuditEvent
from .models import PendingKey, pending_key_lifetime
from .plan import in_use

log = logging.getLogger(__name__)

MAX_LIVE_PER_APPLICATION = 10  # a bound on what a user can make the portal keep
EXPIRED_BATCH = 500


class PendingKeyError(ValueError):
    """Why no key was made; the message names the reason."""


def proposed_subject(app: Application) -> str:
    """The subject DN of the certificate in use: a stable DN avoids IAS's replication delay."""
    current = in_use(app)
    return current.subject if current else f"CN={app.slug}"


@sensitive_variables("made")
def create(
    app: Application, *, subject: str, key_type: str, actor=None, actor_label: str, remote_addr=None
) -> PendingKey:
    now = timezone.now()
    if app.pending_keys.live(now).count() >= MAX_LIVE_PER_APPLICATION:
        raise PendingKeyError(
            f"{app.name} already has {MAX_LIVE_PER_APPLICATION} pending keys: discard one first."
        )
    if key_type not in csr.KEY_TYPES:
        raise PendingKeyError(f"Unknown key type {key_type!r}: use one of {', '.join(csr.KEY_TYPES)}.")
    try:
        made = csr.new_key(key_type, subject)
    except csr.SubjectError as exc:
        raise PendingKeyError(str(exc)) from None
    with transaction.atomic():
        pending = PendingKey.objects.create(
            application=app,
            key_type=key_type,
            subject=made.subject,
            csr_pem=made.csr_pem,
            public_key_sha256=made.public_key_sha256,
            encrypted_private_key=keys.seal(made.key_der),
            created_by=actor,
            created_by_label=actor_label[:200],
            created_at=now,
            expires_at=now + pending_key_lifetime(),
        )
        _audit(
            AuditEvent.Action.KEY_GENERATED,
            pending,
            f"pending key #{pending.pk} ({csr.KEY_TYPES[key_type]}) for a CSR with subject {made.subject}; "
            f"unused, it is deleted on {pending.expires_at:%Y-%m-%d %H:%M} UTC",
            actor=actor,
            actor_label=actor_label,
            remote_addr=remote_addr,
        )
    return pending


def csr_downloaded(pending: PendingKey, *, actor=None, actor_label: str, remote_addr=None) -> None:
    _audit(
        AuditEvent.Action.CSR_DOWNLOADED,
        pending,
        f"CSR of pending key #{pending.pk} ({pending.subject})",
        actor=actor,
        actor_label=actor_label,
        remote_addr=remote_addr,
    )


def discard(pending: PendingKey, *, actor=None, actor_label: str, remote_addr=None) -> None:
    with transaction.atomic():
        _audit(
            AuditEvent.Action.KEY_DISCARDED,
            pending,
            f"pending key #{pending.pk} ({pending.subject}) discarded",
            actor=actor,
            actor_label=actor_label,
            remote_addr=remote_addr,
        )
        pending.delete()


def delete_expired(now: datetime | None = None, actor_label: str = "worker") -> int:
    """Delete the pending keys past CERTMGR_PENDING_KEY_DAYS (they are never matched anyway)."""
    now = now or timezone.now()
    deleted = 0
    while batch := list(PendingKey.objects.expired(now).order_by("pk")[:EXPIRED_BATCH]):
        with transaction.atomic():
            for pending in batch:
                _audit(
                    AuditEvent.Action.KEY_DISCARDED,
                    pending,
                    f"pending key #{pending.pk} ({pending.subject}) expired unused "
                    f"on {pending.expires_at:%Y-%m-%d %H:%M} UTC",
                    actor_label=actor_label,
                )
            deleted += PendingKey.objects.filter(pk__in=[p.pk for p in batch]).delete()[0]
    if deleted:
        log.info("deleted %s expired pending key(s)", deleted)
    return deleted


def _audit(action, pending: PendingKey, detail: str, *, actor=None, actor_label: str, remote_addr=None):
    AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_label=actor_label[:200] or "system",
        application_id=pending.application_id,
        remote_addr=remote_addr,
        detail=detail[:500],
    )
