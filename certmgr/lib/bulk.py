"""INSERT many rows with one statement (or COPY), UPDATE several rows each to its own values.

Django's bulk_create sends every value through the field machinery and builds a fresh SQL
string per batch; for a 10,000-certificate import that cost more than parsing the certificates
(measured with bench/import_bench.py). Here each column gets its adapter once and the database
driver binds the rows. Its bulk_update builds a CASE through expressions at about 1 ms a row
(bench/healthcheck_bench.py --profile); update_each writes the same CASE as text.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

from django.db import DEFAULT_DB_ALIAS, connections, models

from . import roundtrip

# Columns whose Python value the driver binds as it is.
_PLAIN = (
    models.CharField,
    models.TextField,
    models.BooleanField,
    models.IntegerField,
    models.FloatField,
    models.ForeignKey,
)


# Up to this many rows, on SQLite, one INSERT ... RETURNING gives the new primary keys back;
# above it, executemany and one SELECT to read them back are faster. On PostgreSQL, COPY and
# reading them back is faster even for 10 rows (an INSERT of 10 certificate rows took 2.5 ms:
# psycopg splits a long statement for its 230 parameters on every call, and the server plans it;
# COPY and the read-back together 1.4 ms, measured with bench/import_bench.py's per-application runs).
RETURNING_UP_TO = 50


def insert(
    model: type[models.Model], rows: Sequence[models.Model | dict], returning: Sequence[str] = ()
) -> dict | None:
    """Insert model instances, or dicts of attribute names (absent ones get the field default).

    With ``returning``, the attribute names of a unique constraint (plain columns), the new primary
    keys come back as {the row's values of those columns, a tuple: pk}: from the INSERT itself for
    up to RETURNING_UP_TO rows on SQLite, read back with one SELECT otherwise. Without, None.
    """
    if not rows:
        return {} if returning else None
    connection, fields, db_values = _columns(model)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    keys = [quote(model._meta.get_field(name).column) for name in returning]
    pk = quote(model._meta.pk.column)
    with connection.cursor() as cursor:
        if returning and len(rows) <= RETURNING_UP_TO and connection.vendor != "postgresql":
            cursor.execute(*_insert_sql(table, columns, len(fields), rows, db_values, ", ".join([*keys, pk])))
            return {tuple(found[:-1]): found[-1] for found in cursor.fetchall()}
        values = [db_values(row) for row in rows]
        if connection.vendor == "postgresql" and not roundtrip.in_pipeline(connection):
            # COPY: no SQL text to build or parse, however many rows.
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        elif connection.vendor == "postgresql":
            # Sent with others (roundtrip.together), where COPY cannot run: one INSERT per chunk.
            for start in range(0, len(values), RETURNING_UP_TO):
                chunk = values[start : start + RETURNING_UP_TO]
                cursor.execute(*_insert_sql(table, columns, len(fields), chunk, list))  # values already
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({placeholders})",  # noqa: S608 (names from the model)
                values,
            )
        if not returning:
            return None
        # Read back: each key column among the values inserted, and of what comes back (rows
        # stored before may share one column's value), the inserted combinations.
        attnames = [f.attname for f in fields]
        positions = [attnames.index(name) for name in returning]
        inserted = {tuple(row[i] for i in positions) for row in values}
        wanted = [sorted({key[n] for key in inserted}) for n in range(len(keys))]
        where = " AND ".join(
            f"{key} IN ({', '.join(['%s'] * len(v))})" for key, v in zip(keys, wanted, strict=True)
        )
        cursor.execute(
            f"SELECT {', '.join([*keys, pk])} FROM {table} WHERE {where}",  # noqa: S608 (names from the model)
            [value for values_of_key in wanted for value in values_of_key],
        )
        return {key: found[-1] for found in cursor.fetchall() if (key := tuple(found[:-1])) in inserted}


def send_numbered(model: type[models.Model], rows: Sequence[models.Model]) -> roundtrip.Pending:
    """Insert model instances, RETURNING_UP_TO rows per INSERT ... RETURNING, sent
    (roundtrip.send): their primary keys are set once ``rows()`` is read (the keys come back in the
    order of the VALUES, as Django's bulk_create relies on too; on PostgreSQL its bulk_create sends
    each column as an array, slower to adapt than these few rows' values)."""
    if not rows:
        return roundtrip.Pending(lambda: None)
    connection, fields, db_values = _columns(model)
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    columns = ", ".join(quote(f.column) for f in fields)
    chunks = [rows[start : start + RETURNING_UP_TO] for start in range(0, len(rows), RETURNING_UP_TO)]
    sent = [
        roundtrip.send(*_insert_sql(table, columns, len(fields), chunk, db_values, pk)) for chunk in chunks
    ]

    def number() -> None:
        for chunk, pending in zip(chunks, sent, strict=True):
            for row, (key,) in zip(chunk, pending.rows(), strict=True):
                row.pk = key
                row._state.adding = False

    return roundtrip.Pending(number)


def update_each(model: type[models.Model], objects: Sequence[models.Model], names: Sequence[str]) -> None:
    """Write the fields ``names`` of each of ``objects`` (saved rows) as they are in memory: one
    UPDATE ... SET column = CASE pk WHEN ... END for all of them."""
    if not objects:
        return
    connection = connections[DEFAULT_DB_ALIAS]
    quote, meta = connection.ops.quote_name, model._meta
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    whens = " ".join(["WHEN %s THEN %s"] * len(objects))
    sets, params = [], []
    for name in names:
        field = meta.get_field(name)
        adapt = _adapter(field, connection) or (lambda value: value)
        sets.append(f"{quote(field.column)} = CASE {pk} {whens} END")
        params += [value for obj in objects for value in (obj.pk, adapt(getattr(obj, field.attname)))]
    params += [obj.pk for obj in objects]
    marks = ", ".join(["%s"] * len(objects))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {', '.join(sets)} WHERE {pk} IN ({marks})",  # noqa: S608 (names from the model)
            params,
        )


def _insert_sql(table: str, columns: str, width: int, rows, db_values, returned: str | None = None):
    """One INSERT ... VALUES (...), (...) [RETURNING ``returned``] of ``rows``: its SQL and parameters."""
    placeholders = "(" + ", ".join(["%s"] * width) + ")"
    returning = f" RETURNING {returned}" if returned else ""
    sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholders] * len(rows))}{returning}"  # noqa: S608 (names from the model)
    return sql, [v for row in rows for v in db_values(row)]


def _columns(model: type[models.Model]) -> tuple:
    """The connection, the model's columns but its primary key, and what turns a row into their values."""
    # The connection itself, not django.db.connection: every attribute read through that proxy
    # costs a thread-local lookup, and the adapters read it for every value.
    connection = connections[DEFAULT_DB_ALIAS]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    names = [f.attname for f in fields]
    defaults = {f.attname: f.get_default() for f in fields}  # for attributes a dict row leaves out
    # Only the columns that need it go through an adapter: a Python call per value cost more than
    # the INSERT itself (bench/import_bench.py).
    adapted = [(i, adapter) for i, f in enumerate(fields) if (adapter := _adapter(f, connection))]
    pick = operator.itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
    # Fields that set their value as a row is saved (auto_now_add): on instances, as save() does.
    presaved = [f for f in fields if type(f).pre_save is not models.Field.pre_save]

    def db_values(row) -> list:
        if isinstance(row, dict):
            values = list(pick({**defaults, **row}))
        else:
            for field in presaved:
                field.pre_save(row, add=True)
            values = [getattr(row, n) for n in names]
        for i, adapt in adapted:
            values[i] = adapt(values[i])
        return values

    return connection, fields, db_values


def _adapter(field: models.Field, connection) -> Callable | None:
    """What turns the field's Python value into what the driver binds; None: the value itself."""
    if isinstance(field, models.DateTimeField):
        return _same_as_last(connection.ops.adapt_datetimefield_value)
    if isinstance(field, models.JSONField):
        return lambda value: connection.ops.adapt_json_value(value, field.encoder)
    if isinstance(field, _PLAIN) and not isinstance(field, models.GenericIPAddressField):
        return None
    return lambda value: field.get_db_prep_save(value, connection)


def _same_as_last(adapt: Callable) -> Callable:
    """``adapt``, not called again for the object it was just given: the rows of one insert share
    their instants (a batch's upload time, its audit rows' time)."""
    last: list = [None, adapt(None)]

    def adapted(value):
        if value is not last[0]:
            last[0], last[1] = value, adapt(value)
        return last[1]

    return adapted
