"""lib.lookup: one row by a unique column, loaded as the ORM loads it."""

from __future__ import annotations

import pytest

from certmgr.lib import lookup
from certmgr.models import Application

pytestmark = pytest.mark.django_db


def test_the_application_is_loaded_field_by_field_as_the_orm_loads_it(frontend_app):
    frontend_app.notice_thresholds = [30, 7]
    frontend_app.save()

    found = lookup.one(Application, "slug", "frontend")

    # Every field converted as the ORM converts it: the trusted domains and thresholds lists
    # (JSON), the aware creation instant, the booleans.
    loaded = Application.objects.get(slug="frontend")
    names = [field.attname for field in Application._meta.concrete_fields]
    assert [(getattr(found, name), type(getattr(found, name))) for name in names] == [
        (getattr(loaded, name), type(getattr(loaded, name))) for name in names
    ]
    assert found.domains == ["accounts.ondemand.com"] and found.created_at.tzinfo is not None
    assert not found._state.adding  # saved again, it is updated, not inserted twice
    found.name = "Frontend, renamed"
    found.save()
    assert list(Application.objects.values_list("name", flat=True)) == ["Frontend, renamed"]


def test_no_such_row_is_none(frontend_app):
    assert lookup.one(Application, "slug", "payments") is None


def test_a_column_that_is_not_unique_is_refused():
    with pytest.raises(ValueError, match="Application.name is not unique"):
        lookup.one(Application, "name", "Frontend")
