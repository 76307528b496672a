"""Statements sent together (certmgr.lib.roundtrip): on PostgreSQL in psycopg's pipeline mode, on
SQLite one by one. Either way a caller reads what it would have read running them one by one, in
order, and an error stays Django's, with nothing of the transaction kept."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.transaction import TransactionManagementError

from certmgr.lib import bulk, roundtrip
from certmgr.models import Application, AuditEvent, Certificate
from tests import certs

pytestmark = pytest.mark.django_db


def _rename(application: Application, name: str) -> roundtrip.Pending:
    quote = connection.ops.quote_name
    return roundtrip.send(
        f"UPDATE {quote(Application._meta.db_table)} SET {quote('name')} = %s "  # noqa: S608
        f"WHERE {quote('id')} = %s RETURNING {quote('name')}",
        [name, application.pk],
    )


def test_sent_statements_read_what_they_would_read_one_by_one(frontend_app, store):
    item = certs.issue("together", key_slot=3, serial=0x7100)
    stored = store(item.key_pem() + item.pem, store_keys=True)
    names = Application.objects.filter(pk=frontend_app.pk).values_list("name", "next_check_at")

    with transaction.atomic(), roundtrip.together():
        assert roundtrip.in_pipeline(connection) is (connection.vendor == "postgresql")
        before = roundtrip.send_values(names)
        renamed = _rename(frontend_app, "Frontend, renamed")
        after = roundtrip.send_values(names)
        instances = roundtrip.send_instances(Certificate.objects.filter(application=frontend_app))

        # Read in another order than sent: each statement saw the ones sent before it.
        assert after.rows() == [("Frontend, renamed", None)]
        assert renamed.rows() == [("Frontend, renamed",)]
        assert before.rows() == [("Frontend", None)]
        [certificate] = instances.rows()

    # Every field converted as the ORM converts it (aware datetimes, the encrypted key's bytes).
    fields = [field.attname for field in Certificate._meta.concrete_fields]
    loaded = Certificate.objects.get(pk=stored.pk)
    assert [(getattr(certificate, name), type(getattr(certificate, name))) for name in fields] == [
        (getattr(loaded, name), type(getattr(loaded, name))) for name in fields
    ]
    assert certificate.not_after.tzinfo is not None and certificate.encrypted_private_key
    assert not certificate._state.adding


def test_rows_inserted_in_a_sent_batch_are_stored_and_numbered(frontend_app):
    events = [
        AuditEvent(actor_label="test", action=AuditEvent.Action.KEY_READ, detail=f"read {n}")
        for n in range(3)
    ]
    apps = [Application(name=f"Sent {n}", slug=f"sent-{n}", created_at=certs.MID_LIFE) for n in range(2)]

    with transaction.atomic(), roundtrip.together():
        bulk.insert(AuditEvent, events)  # on PostgreSQL COPY cannot run here: an INSERT does
        numbered = bulk.send_numbered(Application, apps)
        numbered.rows()

    assert sorted(AuditEvent.objects.values_list("detail", flat=True)) == ["read 0", "read 1", "read 2"]
    assert [Application.objects.get(pk=app.pk).slug for app in apps] == ["sent-0", "sent-1"]


def test_an_error_in_a_sent_statement_is_djangos_and_keeps_nothing(frontend_app):
    event = AuditEvent(
        actor_label="test", action=AuditEvent.Action.KEY_READ, detail="kept only with the rest"
    )
    clash = Application(name="Clash", slug=frontend_app.slug, created_at=certs.MID_LIFE)  # the slug is unique

    with pytest.raises(IntegrityError, match="slug"), transaction.atomic(), roundtrip.together():
        bulk.insert(AuditEvent, [event])
        bulk.send_numbered(Application, [clash]).rows()

    assert not AuditEvent.objects.filter(detail="kept only with the rest").exists()
    assert list(Application.objects.values_list("slug", flat=True)) == [frontend_app.slug]


@pytest.mark.django_db(transaction=True)  # a real BEGIN and ROLLBACK, and the connection after them
def test_an_error_of_a_statement_never_read_is_djangos_at_the_end_and_keeps_nothing(frontend_app):
    event = AuditEvent(actor_label="test", action=AuditEvent.Action.KEY_READ, detail="sent before the clash")
    clash = {"name": "Clash", "slug": frontend_app.slug, "created_at": certs.MID_LIFE}

    with pytest.raises(IntegrityError, match="slug"), transaction.atomic(), roundtrip.together():
        bulk.insert(AuditEvent, [event])
        bulk.insert(Application, [clash])  # its result is never read: the error comes at the end

    assert not AuditEvent.objects.filter(detail="sent before the clash").exists()
    assert list(Application.objects.values_list("slug", flat=True)) == [frontend_app.slug]


@pytest.mark.django_db(transaction=True)
def test_statements_are_sent_together_only_in_a_transaction(frontend_app):
    if connection.vendor != "postgresql":
        pytest.skip("elsewhere together() is a plain block: nothing is sent together")
    with pytest.raises(TransactionManagementError), roundtrip.together():
        pass
