"""One row by a unique column, with a SELECT built once per model and column, not on every call.

The ORM took longer to build ``Application.objects.filter(slug=slug).first()`` than the database
took to answer it (the SELECT alone: bench/import_floor.py's look-up step): import_certs looks its
application up on every run, and a script importing application by application runs it once per
application (bench/import_bench.py's per-application runs).
"""

from __future__ import annotations

import functools

from django.db import DEFAULT_DB_ALIAS, connections, models


def one(model: type[models.Model], name: str, value, using: str = DEFAULT_DB_ALIAS) -> models.Model | None:
    """The instance whose unique field ``name`` holds ``value`` (every concrete field loaded and
    converted as the ORM converts it), or None."""
    connection = connections[using]
    sql, fields = _select(model, name, using)
    with connection.cursor() as cursor:
        cursor.execute(sql, [model._meta.get_field(name).get_db_prep_value(value, connection)])
        found = cursor.fetchone()
    if found is None:
        return None
    values = list(found)
    for i, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        for convert in connection.ops.get_db_converters(column) + column.get_db_converters(connection):
            values[i] = convert(values[i], column, connection)
    return model.from_db(using, [field.attname for field in fields], values)


@functools.cache
def _select(model: type[models.Model], name: str, using: str) -> tuple[str, list[models.Field]]:
    field = model._meta.get_field(name)
    if not (field.unique or field.primary_key):
        raise ValueError(f"{model.__name__}.{name} is not unique: more than one row could match.")
    quote = connections[using].ops.quote_name
    fields = list(model._meta.concrete_fields)
    columns = ", ".join(quote(f.column) for f in fields)
    return f"SELECT {columns} FROM {quote(model._meta.db_table)} WHERE {quote(field.column)} = %s", fields  # noqa: S608 (names from the model)
