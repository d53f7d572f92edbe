"""Plain SQL for the few statements every turn runs.

The ORM builds and compiles each query anew: for a simple UPDATE or EXISTS that is
most of its cost (py-spy: about a millisecond of CPU each), and a busy worker runs
several per answer. These helpers write the same statements directly, with values
prepared by the model's own fields (so dates, JSON and decimals are stored exactly
as the ORM would store them, on PostgreSQL and SQLite alike).

Only for the hot path; everything else uses the ORM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


def _name(name: str) -> str:
    return connection.ops.quote_name(name)


def _column(field: models.Field) -> str:
    """A concrete field's column, quoted."""
    assert field.column is not None  # noqa: S101 - concrete fields only
    return _name(field.column)


@cache
def _field(model: type[models.Model], name: str) -> tuple[models.Field, str]:
    """The field called `name` ("pk": the primary key) and its column: only a concrete
    field has one."""
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise ValueError(f"{model.__name__}.{name} is not a column")
    return field, field.column


def model_column(model: type[models.Model], name: str) -> str:
    """The column of `model`'s concrete field `name` (unquoted)."""
    return _field(model, name)[1]


def rows_update(
    model: type[models.Model],
    pks: Iterable[int],
    values: Mapping[str, Any],
    *,
    where: Mapping[str, Any] | None = None,
) -> int:
    """UPDATE the rows with these primary keys (and `where` column = value); rows changed.

    `values` and `where` are keyed by field name; a foreign key takes the related
    object or its id.
    """
    pks = list(pks)
    if not pks:
        return 0
    assignments: list[str] = []
    params: list[Any] = []
    for name, value in values.items():
        field, column = _field(model, name)
        if isinstance(value, models.Model):
            value = value.pk
        assignments.append(f"{_name(column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    _, pk_column = _field(model, model._meta.pk.name)
    conditions = [f"{_name(pk_column)} IN ({', '.join(['%s'] * len(pks))})"]
    params.extend(pks)
    for name, value in (where or {}).items():
        field, column = _field(model, name)
        conditions.append(f"{_name(column)} = %s")
        params.append(field.get_db_prep_value(value, connection))
    # Names come from the models' metadata, quoted; values are parameters.
    sql = (
        f"UPDATE {_name(model._meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608
        f"WHERE {' AND '.join(conditions)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _conditions(model: type[models.Model], where: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """`where` (field name -> value, a list of values for IN, or None for IS NULL; a
    foreign key takes the related object or its id) as SQL."""
    conditions: list[str] = []
    params: list[Any] = []
    for name, value in where.items():
        field, column = _field(model, name)
        if isinstance(value, models.Model):
            value = value.pk
        if value is None:
            conditions.append(f"{_name(column)} IS NULL")
        elif isinstance(value, list | tuple):
            conditions.append(f"{_name(column)} IN ({', '.join(['%s'] * len(value))})")
            params.extend(field.get_db_prep_value(item, connection) for item in value)
        else:
            conditions.append(f"{_name(column)} = %s")
            params.append(field.get_db_prep_value(value, connection))
    return " AND ".join(conditions), params


def rows_exist(model: type[models.Model], where: Mapping[str, Any]) -> bool:
    """Whether a row matches `where` (see `_conditions`)."""
    conditions, params = _conditions(model, where)
    sql = f"SELECT 1 FROM {_name(model._meta.db_table)} WHERE {conditions} LIMIT 1"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None


def rows_where(model: type[M], where: Mapping[str, Any], *, limit: int | None = None) -> list[M]:
    """Instances matching `where` (see `_conditions`), in no particular order."""
    conditions, params = _conditions(model, where)
    table = _name(model._meta.db_table)
    sql = f"SELECT {select_list(model, table)} FROM {table} WHERE {conditions}"  # noqa: S608
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return rows_from(model, sql, params)


@cache
def _insert_sql(model: type[models.Model]) -> tuple[list[models.Field], str, bool]:
    meta = model._meta
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
    returning = connection.features.can_return_columns_from_insert
    sql = (
        f"INSERT INTO {_name(meta.db_table)} "  # noqa: S608 - names from the model's metadata
        f"({', '.join(_column(f) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    if returning:
        sql += f" RETURNING {_column(meta.pk)}"
    return fields, sql, returning


def row_insert(instance: M) -> M:
    """INSERT a new instance as `save()` would (each field's default and `pre_save`, its
    value prepared by the field) and set its primary key. Without the save signals: a
    model something listens to is saved the ORM's way instead."""
    model = type(instance)
    if models.signals.pre_save.has_listeners(model) or models.signals.post_save.has_listeners(
        model
    ):
        instance.save(force_insert=True)
        return instance
    fields, sql, returning = _insert_sql(model)
    params = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        instance.pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


@cache
def _select(model: type[models.Model]) -> tuple[list[str], list[tuple[int, list]]]:
    """The model's columns as `from_db` takes them, and the converters of each column
    (the backend's and the field's, as the ORM's compiler applies them)."""
    fields = model._meta.concrete_fields
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        if found:
            converters.append((index, [(converter, column) for converter in found]))
    return [f.attname for f in fields], converters


def select_list(model: type[models.Model], alias: str) -> str:
    """`alias.col1, alias.col2, ...`: every column of the model, in `rows_from` order."""
    return ", ".join(f"{alias}.{_column(f)}" for f in model._meta.concrete_fields)


def rows_from(model: type[M], sql: str, params: list[Any], extra: tuple[str, ...] = ()) -> list[M]:
    """Instances from a query that selects `select_list(model, ...)` and then the columns
    named in `extra` (set as attributes): `Model.objects.raw()` without its per-query
    work of matching columns to fields."""
    attnames, converters = _select(model)
    width = len(attnames)
    found = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    for row in rows:
        values = list(row[:width])
        for index, functions in converters:
            for converter, column in functions:
                values[index] = converter(values[index], column, connection)
        instance = model.from_db(connection.alias, attnames, values)
        for name, value in zip(extra, row[width:], strict=True):
            setattr(instance, name, value)
        found.append(instance)
    return found
