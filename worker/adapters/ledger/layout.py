"""SQL text derived from the ``Table`` objects of ``schema``: names, column lists, keys, casts.

The table objects are the one description of the ledger's tables. Statements that list a
table's columns (inserts, updates, selects, the fold's writes, the rebuild's staging tables)
take the list from here, so a column added to a table object is in every one of them, and
a statement whose rule does not fill it fails when it is prepared instead of silently
leaving it empty. ``check_fields`` is the same guarantee for the classes that hold rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ARRAY, Column, DefaultClause, MetaData, String, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable
from sqlalchemy.types import TypeEngine

from worker.adapters.ledger.statements import Sql, identifier, join
from worker.domain.errors import ImageLedgerError

__all__ = [
    "LayoutError",
    "array_params",
    "assignments",
    "cast_type",
    "check_fields",
    "column_list",
    "create_staging",
    "create_table",
    "has_arrays",
    "key_columns",
    "key_match",
    "key_names",
    "names",
    "qualified",
    "staging_table",
    "value_params",
]

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


class LayoutError(ImageLedgerError):
    """A row class or a statement disagrees with its table object (found at import)."""


def names(columns: Iterable[Column[object]]) -> tuple[str, ...]:
    """The names of some columns, in order."""
    return tuple(c.name for c in columns)


def key_names(table: Table) -> tuple[str, ...]:
    """The primary key's column names, in table order."""
    return names(table.primary_key.columns)


def qualified(table: Table) -> Sql:
    """``schema.table``."""
    return identifier(f"{table.schema}.{table.name}" if table.schema else table.name)


def column_list(columns: Iterable[Column[object]], alias: str | None = None) -> Sql:
    """``a, b, c``, or ``x.a, x.b, x.c`` with an alias."""
    prefix = f"{alias}." if alias else ""
    return join(identifier(f"{prefix}{c.name}") for c in columns)


def key_columns(table: Table) -> Sql:
    """The primary key's columns: ``node, digest``."""
    return column_list(table.primary_key.columns)


def _equal(left: str, right: str) -> Sql:
    return Sql(f"{identifier(left).text} = {identifier(right).text}")


def key_match(table: Table, left: str, right: str) -> Sql:
    """``left.k = right.k AND ...`` over the primary key."""
    return join((_equal(f"{left}.{k}", f"{right}.{k}") for k in key_names(table)), " AND ")


def assignments(table: Table, source: str) -> Sql:
    """``c = source.c, ...`` for every column outside the primary key (an update's SET)."""
    return join(_equal(c.name, f"{source}.{c.name}") for c in table.columns if not c.primary_key)


def cast_type(column: Column[object]) -> str:
    """The column's SQL type for a cast (a collation is the column's, not the value's)."""
    sql_type: TypeEngine[Any] = column.type
    if isinstance(sql_type, String) and sql_type.collation is not None:
        sql_type = type(sql_type)()
    return sql_type.compile(dialect=_DIALECT)


def array_params(columns: Sequence[Column[object]]) -> Sql:
    """``CAST(:a AS T[]), ...``: one array parameter per column, named after it."""
    return join(Sql(f"CAST(:{identifier(c.name).text} AS {cast_type(c)}[])") for c in columns)


def value_params(columns: Sequence[Column[object]]) -> Sql:
    """``:a, :b, ...``: one parameter per column, named after it."""
    return join(Sql(f":{identifier(c.name).text}") for c in columns)


def has_arrays(table: Table) -> bool:
    """Whether a column is an array (``unnest`` cannot pass arrays of arrays)."""
    return any(isinstance(c.type, ARRAY) for c in table.columns)


def _copy_columns(table: Table, *, keys: bool) -> list[Column[Any]]:
    """New columns like the table's (a column belongs to one table), with or without keys."""
    copies: list[Column[Any]] = []
    for c in table.columns:
        default: Any = c.server_default.arg if isinstance(c.server_default, DefaultClause) else None
        key = keys and c.primary_key
        copies.append(
            Column(c.name, c.type, primary_key=key, nullable=c.nullable, server_default=default)
        )
    return copies


def _unlogged(table: Table, name: str, *, keys: bool) -> Table:
    options = dict(table.dialect_options["postgresql"]["with"] or {})
    return Table(
        name,
        MetaData(schema=table.schema),
        *_copy_columns(table, keys=keys),
        prefixes=["UNLOGGED"],
        postgresql_with=options,
    )


def staging_table(table: Table, name: str) -> Table:
    """An unlogged copy of ``table`` under another name: its columns, types, defaults, key
    and storage options (``create_staging`` leaves the key out of the database)."""
    return _unlogged(table, name, keys=True)


def create_staging(staging: Table) -> Sql:
    """``CREATE UNLOGGED TABLE`` of a staging table without its key or any index: bulk
    writes with no index upkeep."""
    return create_table(_unlogged(staging, staging.name, keys=False))


def create_table(table: Table) -> Sql:
    """The ``CREATE TABLE`` statement of a table object."""
    return Sql(str(CreateTable(table).compile(dialect=_DIALECT)).strip())


def check_fields(columns: Sequence[str], fields: Sequence[str], what: str) -> None:
    """Raise ``LayoutError`` unless ``fields`` (of a row class) are ``columns``, in order."""
    if tuple(fields) != tuple(columns):
        raise LayoutError(
            f"{what} and its table disagree: only in {what}: "
            f"{sorted(set(fields) - set(columns))}, only in the table: "
            f"{sorted(set(columns) - set(fields))} (order: {list(fields)} / {list(columns)})"
        )
