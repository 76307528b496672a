"""Expiry as users read it: a state at an instant, and whole days left, in UTC.

The certificate is valid from ISSUED up to and including EXPIRES (RFC 5280 §4.1.2.5);
"expiring" starts when 30 days or less are left.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from certmgr.core.expiry import DEFAULT_THRESHOLD, ExpiryState, days_left, expiry_state
from certmgr.core.facts import certificate_facts
from tests import certs
from tests.certs import (
    AFTER_EXPIRY,
    BEFORE_ISSUE,
    EXPIRES,
    ISSUED,
    MID_LIFE,
    TWENTY_DAYS_BEFORE_EXPIRY,
)

MICROSECOND = timedelta(microseconds=1)


@pytest.fixture(scope="module")
def facts():
    return certificate_facts(certs.issue().cert)


def state_at(facts, now, threshold: timedelta = DEFAULT_THRESHOLD) -> ExpiryState:
    return expiry_state(facts.not_before, facts.not_after, now, threshold)


def test_the_certificate_spans_the_named_instants(facts):
    assert facts.not_before == ISSUED
    assert facts.not_after == EXPIRES


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (BEFORE_ISSUE, ExpiryState.NOT_YET_VALID),
        (ISSUED, ExpiryState.VALID),
        (MID_LIFE, ExpiryState.VALID),
        (TWENTY_DAYS_BEFORE_EXPIRY, ExpiryState.EXPIRING),
        (EXPIRES, ExpiryState.EXPIRING),
        (AFTER_EXPIRY, ExpiryState.EXPIRED),
    ],
    ids=["before-issue", "issued", "mid-life", "twenty-days-before", "expires", "after-expiry"],
)
def test_the_state_at_each_named_instant(facts, now, expected):
    assert state_at(facts, now) is expected


def test_one_microsecond_before_not_before_it_is_not_yet_valid(facts):
    assert state_at(facts, ISSUED - MICROSECOND) is ExpiryState.NOT_YET_VALID


def test_exactly_at_not_after_it_is_still_expiring(facts):
    assert state_at(facts, EXPIRES) is ExpiryState.EXPIRING


def test_one_microsecond_after_not_after_it_is_expired(facts):
    assert state_at(facts, EXPIRES + MICROSECOND) is ExpiryState.EXPIRED


def test_exactly_the_threshold_before_expiry_it_is_expiring(facts):
    assert DEFAULT_THRESHOLD == timedelta(days=30)
    assert state_at(facts, EXPIRES - timedelta(days=30)) is ExpiryState.EXPIRING


def test_one_microsecond_before_the_threshold_it_is_valid(facts):
    assert state_at(facts, EXPIRES - timedelta(days=30) - MICROSECOND) is ExpiryState.VALID


def test_a_custom_threshold_moves_the_start_of_expiring(facts):
    assert state_at(facts, TWENTY_DAYS_BEFORE_EXPIRY, timedelta(days=14)) is ExpiryState.VALID
    assert state_at(facts, TWENTY_DAYS_BEFORE_EXPIRY, timedelta(days=20)) is ExpiryState.EXPIRING


def test_without_not_before_it_is_never_not_yet_valid():
    """An application's next expiry has no start: it is known to have begun."""
    assert expiry_state(None, EXPIRES, BEFORE_ISSUE) is ExpiryState.VALID
    assert expiry_state(None, EXPIRES, AFTER_EXPIRY) is ExpiryState.EXPIRED


def test_states_have_readable_labels():
    assert ExpiryState.NOT_YET_VALID.label == "not yet valid"
    assert ExpiryState.EXPIRING.label == "expiring"
    assert ExpiryState.EXPIRED == "expired"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (ISSUED, 365),
        (MID_LIFE, 227),  # 227 days and 21 hours
        (TWENTY_DAYS_BEFORE_EXPIRY, 20),
        (TWENTY_DAYS_BEFORE_EXPIRY + MICROSECOND, 19),
        (EXPIRES - timedelta(hours=23), 0),
        (EXPIRES, 0),
    ],
    ids=["issued", "mid-life", "twenty-days", "twenty-days-plus-1us", "23h-left", "expires"],
)
def test_days_left_round_down(now, expected):
    assert days_left(EXPIRES, now) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (EXPIRES + MICROSECOND, -1),
        (EXPIRES + timedelta(days=1), -1),
        (AFTER_EXPIRY, -3),
        (AFTER_EXPIRY - timedelta(hours=1), -3),
    ],
    ids=["1us-after", "1-day-after", "after-expiry", "2-days-23h-after"],
)
def test_days_left_are_negative_after_expiry(now, expected):
    assert days_left(EXPIRES, now) == expected
