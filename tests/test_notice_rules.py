"""When a notice is due: crossing a threshold, not matching a day count. Django-free."""

from __future__ import annotations

from datetime import timedelta

import pytest

from certmgr.core.notices import Due, clean_thresholds, due_notice, horizon
from tests.certs import EXPIRES

THRESHOLDS = (60, 30, 14, 7, 1)


def at(days_before: float):
    return EXPIRES - timedelta(days=days_before)


def test_nothing_is_due_before_the_largest_threshold():
    assert due_notice(EXPIRES, at(61), THRESHOLDS, []) is None


@pytest.mark.parametrize(("days_before", "threshold"), [(60, 60), (59.5, 60), (30, 30), (13, 14), (0.5, 1)])
def test_the_crossed_threshold_is_due(days_before, threshold):
    assert due_notice(EXPIRES, at(days_before), THRESHOLDS, []) == Due("threshold", threshold)


def test_a_day_not_matching_any_threshold_still_catches_up():
    # "days left == 30" would never fire on day 29 after a skipped run; crossing does.
    assert due_notice(EXPIRES, at(29), THRESHOLDS, [("threshold", 60)]) == Due("threshold", 30)


def test_a_skipped_week_sends_only_the_most_urgent_crossed_threshold():
    # Last notice at 30 days; the next run comes 6 days before expiry: 14 and 7 are crossed.
    assert due_notice(EXPIRES, at(6), THRESHOLDS, [("threshold", 60), ("threshold", 30)]) == Due(
        "threshold", 7
    )


def test_no_repeat_once_the_threshold_or_a_more_urgent_one_was_sent():
    assert due_notice(EXPIRES, at(13), THRESHOLDS, [("threshold", 14)]) is None
    assert due_notice(EXPIRES, at(13), THRESHOLDS, [("threshold", 7)]) is None


def test_an_expired_certificate_gets_one_expired_notice():
    after = EXPIRES + timedelta(seconds=1)
    assert due_notice(EXPIRES, after, THRESHOLDS, [("threshold", 1)]) == Due("expired")
    assert due_notice(EXPIRES, after + timedelta(days=40), THRESHOLDS, [("expired", 0)]) is None


def test_the_last_second_of_validity_is_not_expired():
    assert due_notice(EXPIRES, EXPIRES, THRESHOLDS, [("threshold", 1)]) is None


def test_per_application_thresholds_replace_the_default():
    assert due_notice(EXPIRES, at(40), (45, 10), []) == Due("threshold", 45)
    assert due_notice(EXPIRES, at(40), THRESHOLDS, []) == Due("threshold", 60)


def test_thresholds_are_cleaned_and_their_horizon_is_the_largest():
    assert clean_thresholds(["7", 30, " 1", 30]) == (30, 7, 1)
    assert horizon((30, 7, 1)) == timedelta(days=30)
    with pytest.raises(ValueError, match="'0' is not a number of days"):
        clean_thresholds(["0"])
    with pytest.raises(ValueError, match="'soon' is not a whole number of days"):
        clean_thresholds(["soon"])
