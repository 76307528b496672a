"""Statements sent to the database together, their results read afterwards.

On PostgreSQL, inside ``together()`` (psycopg's pipeline mode), statements go out without
waiting for each other's results; reading one result waits for it and those sent before it, in
one round trip. A scheduled health check's batch took nine round trips, each a wake-up of the
server and of this process (bench/healthcheck_bench.py on PostgreSQL); sent in two groups, five.

On SQLite ``send`` runs the statement and reads its rows at once (nothing waits on a network
there), and the statements run in the same order either way; on PostgreSQL a result is read when
asked for, in or out of ``together()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.transaction import TransactionManagementError


class Pending:
    """A sent statement (or several); ``rows()`` reads the result, once: later calls return the
    same (or raise the same error)."""

    def __init__(self, read: Callable[[], Any]):
        self._read: Callable[[], Any] | None = read
        self._result: Any = None
        self._error: BaseException | None = None

    def rows(self) -> Any:
        if self._read is not None:
            read, self._read = self._read, None
            try:
                self._result = read()
            except BaseException as exc:
                self._error = exc
                raise
        if self._error is not None:
            raise self._error
        return self._result


def read(*pending: Pending) -> None:
    """Read each one's result now (inside ``together()``: before the block goes on)."""
    for one in pending:
        one.rows()


def _deferred(connection) -> bool:
    return connection.vendor == "postgresql"


@contextlib.contextmanager
def together(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Statements sent in the block, and its end, go to PostgreSQL without waiting for one
    another; the block's end waits for all of them (an error of any is raised there, or where a
    result is read). Elsewhere a plain block. Only in a transaction (outside one, the block's
    statements would commit or fail together, not one by one as elsewhere).

    Only statements sent here (send, bulk) belong in the block: in a pipeline a cursor's rowcount
    is unknown until its result is read, so the ORM's save of an existing row, update() and
    delete() counts, get_or_create and iterator() would go wrong. COPY cannot run in it
    (bulk.insert uses INSERT)."""
    connection = connections[using]
    if not _deferred(connection):
        yield
        return
    if not connection.in_atomic_block:
        raise TransactionManagementError("roundtrip.together() needs a transaction (transaction.atomic).")
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


def in_pipeline(connection) -> bool:
    """Whether ``together()`` is open on this connection."""
    raw = connection.connection
    return raw is not None and connection.vendor == "postgresql" and bool(raw.pgconn.pipeline_status)


def send(
    sql: str, params: list, convert: Callable[[list], Any] = list, using: str = DEFAULT_DB_ALIAS
) -> Pending:
    """Execute ``sql``; its rows (through ``convert``) when asked for."""
    connection = connections[using]
    cursor = connection.cursor()
    try:
        cursor.execute(sql, params)
    except BaseException:
        cursor.close()
        raise

    def read() -> Any:
        try:
            return convert(cursor.fetchall())
        finally:
            cursor.close()

    pending = Pending(read)
    if not _deferred(connection):
        pending.rows()
    return pending


def send_values(queryset: models.QuerySet, make: Callable[[tuple], Any] | None = None) -> Pending:
    """A values_list() queryset, sent: its tuples, converted as the queryset converts them (and
    each through ``make``, if given)."""
    compiler = queryset.query.get_compiler(using=queryset.db)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:  # e.g. pk__in=[]: nothing to ask, as the ORM does
        return Pending(list)

    def convert(rows: list) -> list:
        tuples = compiler.results_iter([rows], tuple_expected=True)
        return [make(row) for row in tuples] if make else list(tuples)

    return send(sql, list(params), convert, queryset.db)


def send_instances(queryset: models.QuerySet) -> Pending:
    """A queryset of model instances (every concrete field, nothing related), sent: the instances."""
    model, db = queryset.model, queryset.db
    names = [field.attname for field in model._meta.concrete_fields]
    return send_values(queryset.values_list(*names), lambda row: model.from_db(db, names, row))
