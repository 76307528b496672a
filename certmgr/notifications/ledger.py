"""Notifications: plan what is due into the ledger, then deliver the ledger. Any number at once.

plan(): the crossing rule (core/notices.py) over the certificates that can be due, and the
renewals; each due notice becomes one ledger row per channel and recipient, inserted with the
unique constraint doing the deduplication (a second process, or a second run, inserts nothing).
deliver(): claims a pending row with a conditional UPDATE (one sender wins), sends it, records
the outcome; a retryable failure comes back later with backoff, a permanent one stops.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from ..access.roles import role_of
from ..core.notices import Due, due_notice, horizon
from ..models import Application, Certificate, HealthCheckRun
from .models import Notice, NotificationChannel

log = logging.getLogger(__name__)

NOTIFIED = (Notice.Event.THRESHOLD, Notice.Event.EXPIRED)


def thresholds_for(application: Application) -> tuple[int, ...]:
    return tuple(application.notice_thresholds or settings.CERTMGR_NOTICE_THRESHOLDS)


# --- planning -----------------------------------------------------------------------------------


def plan(now: datetime | None = None) -> int:
    """Write every notice due at ``now`` into the ledger; returns the number of new rows."""
    now = now or timezone.now()
    channels = _channels_by_application()
    rows = []
    if channels:
        rows = _expiry_rows(now, channels) + _resolved_rows(channels) + _drift_rows(channels)
    return _insert(rows + _digest_rows(now), now)


def _channels_by_application(application_id: int | None = None) -> dict[int, list]:
    """Enabled channels with their recipients, by application: {application id: [(channel, [recipient])]}."""
    query = NotificationChannel.objects.filter(enabled=True)
    if application_id is not None:
        query = query.filter(application_id=application_id)
    channels = list(
        query.select_related("application").prefetch_related(
            "application__owners", "application__owner_groups__user_set"
        )
    )
    if not channels:
        return {}
    from .channels import recipients

    by_app = defaultdict(list)
    for channel in channels:
        by_app[channel.application_id].append((channel, recipients(channel)))
    return by_app


class DueCertificate(NamedTuple):
    certificate_id: int
    application_id: int
    not_after: datetime
    due: Due


def _renewed():
    """A later-expiring active certificate of the same application exists (a renewal)."""
    return Exists(
        Certificate.objects.active().filter(
            application_id=OuterRef("application_id"), not_after__gt=OuterRef("not_after")
        )
    )


def due_certificates(now: datetime, largest: timedelta):
    """Active, unmuted, not renewed certificates within ``largest`` of expiry, each row joined with
    its ledger entries: (id, application id, not_after, event, threshold). The bench times this."""
    return (
        Certificate.objects.active()
        .filter(not_after__lte=now + largest)
        .filter(Q(muted_until__isnull=True) | Q(muted_until__lte=now))
        .filter(~_renewed())
        .order_by()
        .values_list("id", "application_id", "not_after", "notices__event", "notices__threshold")
    )


def _expiry_rows(now: datetime, channels) -> list[Notice]:
    rows = []
    for found in find_due(now, channels):
        rows += _fan_out(channels[found.application_id], certificate_id=found.certificate_id, due=found.due)
    return rows


def find_due(now: datetime, application_ids) -> list[DueCertificate]:
    """Every certificate of these applications with a notice due at ``now`` (bench/notify_bench.py).

    Plain tuples and no IN list of applications: with tens of thousands of applications, bound
    parameters and model instances would cost more than the query itself.
    """
    wanted = set(application_ids)
    default = tuple(settings.CERTMGR_NOTICE_THRESHOLDS)
    own = dict(Application.objects.exclude(notice_thresholds=[]).values_list("pk", "notice_thresholds"))
    largest = max([horizon(default)] + [horizon(thresholds) for thresholds in own.values()])
    facts, notified = {}, defaultdict(set)
    for pk, application_id, not_after, event, threshold in due_certificates(now, largest):
        facts[pk] = (application_id, not_after)
        if event is not None:
            notified[pk].add((event, threshold))
    found = []
    for pk, (application_id, not_after) in facts.items():
        if application_id in wanted:
            due = due_notice(not_after, now, own.get(application_id) or default, notified[pk])
            if due is not None:
                found.append(DueCertificate(pk, application_id, not_after, due))
    return found


def _resolved_rows(channels) -> list[Notice]:
    """One "renewed" notice for each notified certificate that a later-expiring active one replaced,
    or that a rotation retired (it is no longer in use, whatever the new one's expiry)."""
    replaced = (
        Certificate.objects.filter(notices__event__in=NOTIFIED)
        .exclude(notices__event=Notice.Event.RESOLVED)
        .filter(_renewed() | Q(lifecycle=Certificate.Lifecycle.RETIRED))
        .values_list("id", "application_id")
        .distinct()
    )
    rows = []
    for pk, application_id in replaced:
        if application_id in channels:
            rows += _fan_out(channels[application_id], certificate_id=pk, due=_Resolved())
    return rows


class _Resolved:
    event, threshold = Notice.Event.RESOLVED, 0


def _drift_rows(channels) -> list[Notice]:
    """One notice for each retired certificate that a Cloud Foundry binding still holds (the last
    sync found it there): the rotation has not reached that binding."""
    held = (
        Certificate.objects.filter(lifecycle=Certificate.Lifecycle.RETIRED, bindings__isnull=False)
        .exclude(notices__event=Notice.Event.DRIFT)
        .values_list("id", "application_id")
        .distinct()
    )
    rows = []
    for pk, application_id in held:
        if application_id in channels:
            rows += _fan_out(channels[application_id], certificate_id=pk, event=Notice.Event.DRIFT)
    return rows


def _fan_out(channel_items, *, certificate_id=None, due=None, health_check=None, event=None) -> list[Notice]:
    rows = []
    for channel, recipients in channel_items:
        for recipient in recipients:
            rows.append(
                Notice(
                    application_id=channel.application_id,
                    certificate_id=certificate_id,
                    health_check=health_check,
                    channel=channel,
                    event=event or due.event,
                    threshold=due.threshold if due else 0,
                    recipient=recipient,
                )
            )
    return rows


def _insert(rows: list[Notice], now: datetime) -> int:
    if not rows:
        return 0
    for row in rows:  # due at the instant they were planned for (also with --now)
        row.created_at = row.next_attempt_at = now
    before = Notice.objects.count()
    Notice.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return Notice.objects.count() - before


def health_transition(application: Application, run: HealthCheckRun, previous_ok: bool | None) -> int:
    """A first failure after success (or after nothing), or a recovery: one notice per channel."""
    if run.ok == previous_ok or (run.ok and previous_ok is None):
        return 0
    channels = _channels_by_application(application.pk).get(application.pk, [])
    event = Notice.Event.HEALTH_RECOVERED if run.ok else Notice.Event.HEALTH_FAILED
    return _insert(_fan_out(channels, health_check=run, event=event), run.started_at)


def digest_readers():
    """Active users who opted in to the daily digest and have an email address."""
    return get_user_model().objects.filter(is_active=True, preference__daily_digest=True).exclude(email="")


def digest_certificates(user, now: datetime):
    """Active certificates of the user's applications expiring within the largest threshold."""
    if role_of(user) is None:  # e.g. an IAS user whose roles lapsed: no more data by mail
        return Certificate.objects.none()
    apps = Application.objects.all() if user.is_superuser else Application.objects.managed_by(user)
    largest = horizon(settings.CERTMGR_NOTICE_THRESHOLDS)
    return (
        Certificate.objects.active()
        .filter(application__in=apps, not_after__lte=now + largest)
        .select_related("application")
        .order_by("not_after")
    )


def _digest_rows(now: datetime) -> list[Notice]:
    """One digest a day per reader, from CERTMGR_DIGEST_HOUR (UTC) on, and only with something in it."""
    if now.hour < settings.CERTMGR_DIGEST_HOUR:
        return []
    return [
        Notice(event=Notice.Event.DIGEST, day=now.date(), recipient=user.email)
        for user in digest_readers()
        if digest_certificates(user, now).exists()
    ]


# --- delivery -----------------------------------------------------------------------------------


def deliver(now: datetime | None = None, batch_size: int = 200) -> dict[str, int]:
    """Send every pending notice that is due; returns counts by outcome."""
    now = now or timezone.now()
    _release_stale_claims(now)
    outcome = defaultdict(int)
    due = Notice.objects.filter(state=Notice.State.PENDING, next_attempt_at__lte=now).order_by(
        "next_attempt_at", "pk"
    )
    # Batch after batch until none is left: rows another sender claimed meanwhile are skipped,
    # and they are no longer pending when the next batch is read.
    while batch := list(due.values_list("pk", "attempts")[:batch_size]):
        for pk_attempts in batch:
            claimed = claim(pk_attempts, now)
            if claimed is not None:
                outcome[send(claimed, now)] += 1
    return dict(outcome)


def claim(pk_attempts: tuple[int, int], now: datetime) -> Notice | None:
    pk, attempts = pk_attempts
    won = Notice.objects.filter(pk=pk, state=Notice.State.PENDING, attempts=attempts).update(
        state=Notice.State.SENDING, claimed_at=now, attempts=attempts + 1
    )
    if not won:
        return None  # another sender has it
    return Notice.objects.select_related("application", "certificate", "channel", "health_check").get(pk=pk)


def send(notice: Notice, now: datetime) -> str:
    """Deliver one claimed notice and record the outcome: "sent", "retry" or "failed"."""
    from .channels import ChannelError, EmailChannel, channel_for
    from .messages import digest_message, message_for

    try:
        if notice.event == Notice.Event.DIGEST:
            EmailChannel().send(digest_message(notice, now), notice.recipient)
        else:
            channel_for(notice.channel).send(message_for(notice, now), notice.recipient)
    except ChannelError as exc:
        return _failed(notice, now, str(exc), exc.retryable)
    except Exception as exc:  # noqa: BLE001 - one broken channel must not stop a round (or a page)
        # Only the class: an exception's text may quote a webhook URL, which is a credential.
        log.error("notice %s failed unexpectedly: %s", notice.pk, exc.__class__.__name__)
        return _failed(notice, now, f"unexpected error ({exc.__class__.__name__}).", False)
    Notice.objects.filter(pk=notice.pk).update(state=Notice.State.SENT, sent_at=now, last_error="")
    return "sent"


@dataclass
class TestNotice:
    """What the "send test notice" button did: nothing (``refused`` says why), or per recipient a
    TEST row sent or failed (with whether a later try could pass)."""

    refused: str = ""
    recipients: int = 0
    sent: list[Notice] = field(default_factory=list)
    failed: list[tuple[Notice, bool]] = field(default_factory=list)
    sender: object = None

    def scrub(self, text: str) -> str:
        """``text`` without the channel's URLs or secrets (for the audit log)."""
        from .channels import scrub_secrets

        return scrub_secrets(text, self.sender)


def send_test(row: NotificationChannel, now: datetime | None = None) -> TestNotice:
    """A TEST notice per recipient of ``row``, claimed and sent at once through the one delivery
    path, so a channel is exercised exactly as a real notice would exercise it. A failed test
    notice is not retried later: the person who pressed the button is told now."""
    from .channels import ChannelError, channel_for, recipients

    try:
        sender = channel_for(row)
    except ChannelError as exc:
        return TestNotice(refused=str(exc))
    to = recipients(row)
    if not to:
        return TestNotice(refused="the channel has no recipients.", sender=sender)
    now = now or timezone.now()
    test = TestNotice(recipients=len(to), sender=sender)
    for recipient in to:
        notice = Notice.objects.create(
            application_id=row.application_id,
            channel=row,
            event=Notice.Event.TEST,
            recipient=recipient,
            created_at=now,
            next_attempt_at=now,
        )
        claimed = claim((notice.pk, notice.attempts), now)
        outcome = send(claimed, now) if claimed is not None else "sent elsewhere"
        notice.refresh_from_db()
        if notice.state == Notice.State.SENT:
            test.sent.append(notice)
        else:
            test.failed.append((notice, outcome == "retry"))
    return test


def _failed(notice: Notice, now: datetime, error: str, retryable: bool) -> str:
    # A test notice is for the person who pressed the button now: it is not retried behind their back.
    final = (
        not retryable
        or notice.event == Notice.Event.TEST
        or notice.attempts >= settings.CERTMGR_NOTICE_MAX_ATTEMPTS
    )
    backoff = timedelta(minutes=min(2 ** (notice.attempts - 1), 120))
    Notice.objects.filter(pk=notice.pk).update(
        state=Notice.State.FAILED if final else Notice.State.PENDING,
        next_attempt_at=now + backoff,
        last_error=error[:500],
    )
    log.warning(
        "notice %s via %s failed (%s): %s",
        notice.pk,
        notice.channel.kind if notice.channel else "email",
        "final" if final else "will retry",
        error,
    )
    if notice.event == Notice.Event.TEST:  # failed for good, but the button may say a retry could pass
        return "retry" if retryable else "failed"
    return "failed" if final else "retry"


def _release_stale_claims(now: datetime) -> None:
    # At least once: a sender that died mid-send may have sent; sending again beats never.
    stale = now - timedelta(minutes=settings.CERTMGR_NOTICE_CLAIM_MINUTES)  # its sender has died
    Notice.objects.filter(state=Notice.State.SENDING, claimed_at__lt=stale).update(
        state=Notice.State.PENDING, last_error="the sender stopped while sending; retried"
    )
