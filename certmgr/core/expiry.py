"""Expiry as users read it: a state and whole days left, computed in UTC."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

DEFAULT_THRESHOLD = timedelta(days=30)


class ExpiryState(StrEnum):
    NOT_YET_VALID = "not_yet_valid"
    VALID = "valid"
    EXPIRING = "expiring"
    EXPIRED = "expired"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


def expiry_state(
    not_before: datetime | None,
    not_after: datetime,
    now: datetime,
    threshold: timedelta = DEFAULT_THRESHOLD,
) -> ExpiryState:
    """``not_before`` None means "known to have started" (e.g. an application's next expiry)."""
    # A certificate is valid up to and including not_after (RFC 5280 §4.1.2.5).
    if not_before is not None and now < not_before:
        return ExpiryState.NOT_YET_VALID
    if now > not_after:
        return ExpiryState.EXPIRED
    if not_after - now <= threshold:
        return ExpiryState.EXPIRING
    return ExpiryState.VALID


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days until expiry, rounded down; negative once expired."""
    return (not_after - now) // timedelta(days=1)
