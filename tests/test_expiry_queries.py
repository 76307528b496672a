"""Expiry in the database: the QuerySet filters agree with what a certificate says of itself.

Valid up to and including not_after (RFC 5280); "expiring" within CERTMGR_EXPIRY_WARNING_DAYS
(30 here) of it; days left rounded down.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from certmgr.core.expiry import ExpiryState
from certmgr.models import Application, Certificate
from tests import certs

pytestmark = pytest.mark.django_db

NOT_YET_VALID, VALID, EXPIRING, EXPIRED = (
    ExpiryState.NOT_YET_VALID,
    ExpiryState.VALID,
    ExpiryState.EXPIRING,
    ExpiryState.EXPIRED,
)
TICK = timedelta(microseconds=1)
WINDOW = timedelta(days=30)


@pytest.fixture(autouse=True)
def _defaults(settings):
    settings.CERTMGR_EXPIRY_WARNING_DAYS = 30


@pytest.fixture
def stored_leaf(store, leaf) -> Certificate:
    """The suite's leaf (ISSUED .. EXPIRES) as the database holds it."""
    return Certificate.objects.get(pk=store(leaf.pem).pk)


def ids(queryset) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


def filters(now) -> dict[ExpiryState, object]:
    mine = Certificate.objects
    return {
        NOT_YET_VALID: mine.not_yet_valid(now=now),
        VALID: mine.valid(now=now),
        EXPIRING: mine.expiring(now=now),
        EXPIRED: mine.expired(now=now),
    }


# --- one certificate through its life, at the named instants ---------------------------------

LIFE = [
    pytest.param(certs.BEFORE_ISSUE, NOT_YET_VALID, 367, id="before-issue"),
    pytest.param(certs.MID_LIFE, VALID, 227, id="mid-life"),
    pytest.param(certs.TWENTY_DAYS_BEFORE_EXPIRY, EXPIRING, 20, id="twenty-days-before-expiry"),
    pytest.param(certs.AFTER_EXPIRY, EXPIRED, -3, id="after-expiry"),
]


@pytest.mark.parametrize(("instant", "state", "days"), LIFE)
def test_exactly_one_filter_holds_the_certificate_and_it_is_its_own_state(stored_leaf, instant, state, days):
    with time_machine.travel(instant, tick=False):
        holding = {s for s, queryset in filters(None).items() if stored_leaf.pk in ids(queryset)}

        assert holding == {state}
        assert stored_leaf.expiry_state() == state
        assert stored_leaf.days_left() == days
        assert ids(Certificate.objects.in_state(state)) == {stored_leaf.pk}


@pytest.mark.parametrize(("instant", "state", "days"), LIFE)
def test_an_explicit_now_wins_over_the_clock(stored_leaf, instant, state, days):
    with time_machine.travel(certs.MID_LIFE, tick=False):
        assert ids(Certificate.objects.in_state(state, now=instant)) == {stored_leaf.pk}
        assert (stored_leaf.expiry_state(now=instant), stored_leaf.days_left(now=instant)) == (state, days)


# --- the boundaries --------------------------------------------------------------------------

BOUNDARIES = [
    pytest.param(certs.ISSUED - TICK, NOT_YET_VALID, 365, id="just-before-not-before"),
    pytest.param(certs.ISSUED, VALID, 365, id="at-not-before"),
    pytest.param(certs.EXPIRES - WINDOW - TICK, VALID, 30, id="just-outside-the-window"),
    pytest.param(certs.EXPIRES - WINDOW, EXPIRING, 30, id="window-starts"),
    pytest.param(certs.EXPIRES - TICK, EXPIRING, 0, id="last-microsecond"),
    pytest.param(certs.EXPIRES, EXPIRING, 0, id="at-not-after-still-valid"),
    pytest.param(certs.EXPIRES + TICK, EXPIRED, -1, id="just-after-not-after"),
]


@pytest.mark.parametrize(("instant", "state", "days"), BOUNDARIES)
def test_the_model_and_the_filters_agree_at_the_boundaries(stored_leaf, instant, state, days):
    with time_machine.travel(instant, tick=False):
        holding = {s for s, queryset in filters(instant).items() if stored_leaf.pk in ids(queryset)}

        assert holding == {state}
        assert stored_leaf.expiry_state() == state
        assert stored_leaf.days_left() == days


# --- a population, at MID_LIFE ---------------------------------------------------------------


@pytest.fixture
def population(store):
    """One certificate per state at MID_LIFE, by name."""
    made = {
        "valid": certs.issue("valid"),
        "expiring": certs.issue("expiring", not_after=certs.MID_LIFE + timedelta(days=10), serial=2),
        "expired": certs.issue("expired", not_after=certs.MID_LIFE - timedelta(days=1), serial=3),
        "not-yet-valid": certs.issue(
            "not-yet-valid", not_before=certs.MID_LIFE + timedelta(days=5), serial=4
        ),
    }
    return {name: store(item.pem).pk for name, item in made.items()}


def names(queryset, population) -> set[str]:
    found = ids(queryset)
    return {name for name, pk in population.items() if pk in found}


@time_machine.travel(certs.MID_LIFE, tick=False)
def test_each_filter_picks_exactly_its_certificates(population):
    assert names(Certificate.objects.expired(), population) == {"expired"}
    assert names(Certificate.objects.expiring(), population) == {"expiring"}
    assert names(Certificate.objects.not_yet_valid(), population) == {"not-yet-valid"}
    assert names(Certificate.objects.valid(), population) == {"valid"}


@time_machine.travel(certs.MID_LIFE, tick=False)
def test_in_state_partitions_the_certificates(population):
    by_state = {state: names(Certificate.objects.in_state(state.value), population) for state in ExpiryState}

    assert by_state == {
        NOT_YET_VALID: {"not-yet-valid"},
        VALID: {"valid"},
        EXPIRING: {"expiring"},
        EXPIRED: {"expired"},
    }
    with pytest.raises(ValueError):
        Certificate.objects.in_state("nearly-expired")


@time_machine.travel(certs.MID_LIFE, tick=False)
def test_the_window_is_the_within_argument_or_else_the_setting(settings, population):
    assert names(Certificate.objects.expiring(within=timedelta(days=9)), population) == set()
    assert names(Certificate.objects.valid(within=timedelta(days=9)), population) == {"expiring", "valid"}
    assert names(Certificate.objects.expiring(within=timedelta(days=400)), population) == {
        "expiring",
        "valid",
    }

    settings.CERTMGR_EXPIRY_WARNING_DAYS = 9
    assert names(Certificate.objects.expiring(), population) == set()
    assert names(Certificate.objects.in_state(VALID), population) == {"expiring", "valid"}


def test_twenty_days_before_expiry_is_expiring_with_the_default_window_but_not_a_ten_day_one(stored_leaf):
    now = certs.TWENTY_DAYS_BEFORE_EXPIRY
    with time_machine.travel(now, tick=False):
        assert ids(Certificate.objects.expiring(now=now)) == {stored_leaf.pk}
        assert ids(Certificate.objects.expiring(within=timedelta(days=10), now=now)) == set()
        assert ids(Certificate.objects.valid(within=timedelta(days=10), now=now)) == {stored_leaf.pk}


# --- an application's next expiry ------------------------------------------------------------


def next_expiry(app: Application):
    annotated = Application.objects.with_next_expiry().get(pk=app.pk)
    return annotated.next_expiry, annotated.active_count


def set_lifecycle(pk: int, lifecycle: str) -> None:
    Certificate.objects.filter(pk=pk).update(lifecycle=lifecycle)


@time_machine.travel(certs.MID_LIFE, tick=False)
def test_next_expiry_is_the_earliest_active_certificate(frontend_app, store, leaf):
    store(leaf.pem)
    later = store(certs.issue("later", not_after=certs.EXPIRES + timedelta(days=90), serial=2).pem)
    sooner = store(certs.issue("sooner", not_after=certs.TWENTY_DAYS_BEFORE_EXPIRY, serial=3).pem)

    assert next_expiry(frontend_app) == (certs.TWENTY_DAYS_BEFORE_EXPIRY, 3)
    set_lifecycle(sooner.pk, Certificate.Lifecycle.RETIRED)
    assert next_expiry(frontend_app) == (certs.EXPIRES, 2)
    set_lifecycle(later.pk, Certificate.Lifecycle.STAGED)
    assert next_expiry(frontend_app) == (certs.EXPIRES, 1)


@time_machine.travel(certs.MID_LIFE, tick=False)
def test_an_expired_active_certificate_is_the_next_expiry(frontend_app, store, leaf):
    """Not "next" in time, but the one to act on: it is still in use."""
    store(leaf.pem)
    store(certs.issue("lapsed", not_after=certs.MID_LIFE - timedelta(days=1), serial=2).pem)

    assert next_expiry(frontend_app) == (certs.MID_LIFE - timedelta(days=1), 2)


@time_machine.travel(certs.MID_LIFE, tick=False)
def test_an_expired_root_in_the_chain_does_not_count(frontend_app, store):
    root = certs.issue(
        "Lapsed Root CA",
        ca=True,
        eku=(),
        key_kind="ec",
        key_slot=111,
        serial=1,
        not_before=certs.BEFORE_ISSUE,
        not_after=certs.ISSUED + timedelta(days=30),
    )
    leaf = certs.issue("chained-app", issuer=root, key_kind="ec", key_slot=112, serial=2)
    cert = store(leaf.pem + root.pem)

    assert len(cert.chain_certificates()) == 2
    assert root.not_after < certs.MID_LIFE
    assert next_expiry(frontend_app) == (certs.EXPIRES, 1)


def test_an_application_without_active_certificates_has_no_next_expiry(
    frontend_app, backend_app, store, leaf
):
    retired = store(leaf.pem)
    set_lifecycle(retired.pk, Certificate.Lifecycle.RETIRED)

    assert next_expiry(frontend_app) == (None, 0)
    assert next_expiry(backend_app) == (None, 0)


def test_next_expiry_is_per_application(frontend_app, store, leaf):
    other = Application.objects.create(name="Other", slug="other")
    store(leaf.pem)
    store(certs.issue("other-app", not_after=certs.TWENTY_DAYS_BEFORE_EXPIRY, serial=2).pem, other)

    assert next_expiry(frontend_app) == (certs.EXPIRES, 1)
    assert next_expiry(other) == (certs.TWENTY_DAYS_BEFORE_EXPIRY, 1)
