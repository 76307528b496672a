"""What a notice says and when one is due. Plain data in and out, no Django.

The rule peers get wrong: a notice is due when a certificate has *crossed* a threshold it was
not yet notified for ("days left <= 30"), never when "days left == 30" (a skipped daily run
would miss it). After a gap only the most urgent crossed threshold goes out, not a burst.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

DEFAULT_THRESHOLDS = (60, 30, 14, 7, 1)


@dataclass(frozen=True)
class Message:
    """One notice's content; every channel renders it its own way."""

    event: str  # threshold | expired | resolved | health_failed | health_recovered | digest | test
    subject: str  # one line
    text: str  # plain text, complete: what, when (UTC and days left), which application and tenant, steps
    html: str  # the same for email
    application: str = ""
    application_slug: str = ""
    tenant: str = ""
    certificate_subject: str = ""
    fingerprint: str = ""
    not_after: datetime | None = None
    days_left: int | None = None
    threshold: int | None = None
    link: str = ""  # the application's page (rotation panel)
    severity: str = "warning"  # info | warning | error | critical
    # The ledger row's id: the same in every delivery of one notice (a retry after a sender died
    # mid-send, say), so a receiver can drop a duplicate. Delivery is at least once.
    notice_id: str = ""
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Due:
    event: str  # "threshold" or "expired"
    threshold: int = 0


def due_notice(
    not_after: datetime,
    now: datetime,
    thresholds: Iterable[int],
    notified: Iterable[tuple[str, int]],
) -> Due | None:
    """The one notice due for a certificate at ``now``, given what was already notified.

    ``notified`` holds (event, threshold) pairs already in the ledger for this certificate.
    """
    sent = set(notified)
    if now > not_after:  # valid up to and including not_after (RFC 5280)
        return None if ("expired", 0) in sent else Due("expired")
    left = not_after - now
    crossed = [days for days in set(thresholds) if days > 0 and left <= timedelta(days=days)]
    if not crossed:
        return None
    most_urgent = min(crossed)
    # Something at least as urgent went out already: nothing new to say.
    if any(event == "threshold" and days <= most_urgent for event, days in sent):
        return None
    return Due("threshold", most_urgent)


def horizon(thresholds: Iterable[int]) -> timedelta:
    """How far ahead a notice can be due: the largest threshold."""
    return timedelta(days=max(thresholds, default=0))


def clean_thresholds(values: Iterable) -> tuple[int, ...]:
    """Whole days, largest first, no duplicates; raises ValueError naming the bad value."""
    days = set()
    for value in values:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a whole number of days") from None
        if not 1 <= number <= 3650:
            raise ValueError(f"{value!r} is not a number of days between 1 and 3650")
        days.add(number)
    return tuple(sorted(days, reverse=True))
