"""Numbers and moments in words, as the pages say them: "2 certificates", "in 12 days"."""

from __future__ import annotations

from datetime import datetime


def counted(count: int, noun: str) -> str:
    """A count with its noun: "1 certificate", "2 certificates"; ``noun`` may be "entry,entries"."""
    one, _, many = noun.partition(",")
    return f"{count} {one if count == 1 else (many or one + 's')}"


# (unit, its length in seconds, from which span on it is used): "47 hours", then "2 days".
_UNITS = (
    ("year", 365 * 86400, 730 * 86400),
    ("day", 86400, 2 * 86400),
    ("hour", 3600, 3600),
    ("minute", 60, 60),
)


def relative(moment: datetime, now: datetime) -> str:
    """The span in words as people say it ("in 12 days", "3 hours ago"): whole units, rounded down."""
    seconds = (moment - now).total_seconds()
    span = abs(seconds)
    if span < 60:
        return "in less than a minute" if seconds > 0 else "less than a minute ago"
    unit, size = next((unit, size) for unit, size, start in _UNITS if span >= start)
    words = counted(int(span // size), unit)
    return f"in {words}" if seconds > 0 else f"{words} ago"
