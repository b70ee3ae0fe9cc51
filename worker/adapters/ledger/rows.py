"""How each projection row class maps to its ``ledger`` table, derived from the table object.

A ``TableCodec`` pairs a row class of ``worker.domain.projection`` with its ``Table``
(``schema``) and takes everything else from the two: the columns, their order and SQL
types, the key, the upserts, the selects, and how a value is stored. A column is filled
by the row field of the same name, by a field of an attrs value the codec is told to
``flatten`` (``PolicyRow.prepull``: one column per field), or by a ``Computed`` rule
(``TAG_DERIVED``: the parts of a tag, from the domain's tag grammar). JSONB columns hold
the converter's form of the field, array columns a list of its items.

A row class and a table that disagree (a column nothing fills, a field no column stores)
stop the import with ``LayoutError``: a column cannot be added to a table object without
the rule that fills it.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Mapping, Sequence
from functools import cache, lru_cache
from operator import attrgetter, itemgetter
from typing import Any

import attrs
from attrs import frozen
from sqlalchemy import ARRAY, Table
from sqlalchemy.dialects.postgresql import JSONB

from worker.adapters.ledger import schema
from worker.adapters.ledger.layout import (
    LayoutError,
    array_params,
    assignments,
    column_list,
    has_arrays,
    key_columns,
    key_match,
    key_names,
    names,
    qualified,
    value_params,
)
from worker.adapters.ledger.statements import Sql, Statement, statement
from worker.converter import converter
from worker.domain.projection import (
    NodeImageRow,
    NodeRow,
    PolicyRow,
    PresenceRow,
    RefreshRow,
    TagInterval,
    TagRow,
)
from worker.domain.tags import ParsedTag, parse_tag, sort_text

__all__ = ["CODECS", "TAG_DERIVED", "Computed", "TableCodec", "tag_columns"]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@frozen
class Computed:
    """Columns computed together from a row on write (and not read back)."""

    columns: tuple[str, ...]
    values: Callable[[Any], tuple[Any, ...]]


_Convert = Callable[[Any], Any] | None


def _converters(table: Table, name: str, hint: Any) -> tuple[_Convert, _Convert]:
    """How a field's value is written to and read from its column (None: as it is)."""
    column_type = table.columns[name].type
    if isinstance(column_type, JSONB):
        return (
            lambda v: _json(converter.unstructure(v, hint)),
            lambda v: converter.structure(_loads(v), hint),
        )
    if isinstance(column_type, ARRAY):
        return list, tuple
    return None, None


def _stored_fields(
    table: Table, cls: type[Any], flatten: Sequence[str]
) -> list[tuple[str, str, Any]]:
    """(column, attribute path, type hint) of each column a field fills; checks each field."""
    hints = typing.get_type_hints(cls)
    stored = []
    for field in attrs.fields(cls):
        if field.name in flatten:
            inner = typing.get_type_hints(hints[field.name])
            stored += [(f, f"{field.name}.{f}", inner[f]) for f in inner]
        else:
            stored.append((field.name, field.name, hints[field.name]))
    for column, path, _ in stored:
        if column not in table.columns:
            raise LayoutError(f"{cls.__name__}.{path} has no column in table {table.name}")
    return stored


def _embedded(cls: type[Any], parts: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """Read a flattened attrs value from its columns."""
    return lambda record: cls(*(part(record) for part in parts))


class TableCodec:
    """A table and its row class: columns, key, row <-> record functions, statements."""

    def __init__(
        self,
        table: Table,
        cls: type[Any],
        *,
        flatten: Sequence[str] = (),
        computed: Computed | None = None,
    ) -> None:
        self.table, self.cls = table, cls
        self.columns = names(table.columns)
        self.key = key_names(table)
        self.bulk = not has_arrays(table)
        """Written with one statement of arrays (no array columns: ``unnest`` flattens)."""
        stored = _stored_fields(table, cls, flatten)
        made = {c for c, _, _ in stored} | set(computed.columns if computed else ())
        missing = [c for c in self.columns if c not in made]
        if missing:
            raise LayoutError(
                f"columns {missing} of table {table.name}: no field of {cls.__name__} and "
                "no rule fills them"
            )
        self.encode = self._encoder(stored, computed)
        self.decode = self._decoder(stored, flatten)
        self._upsert = self._upsert_statement()

    def _encoder(
        self, stored: list[tuple[str, str, Any]], computed: Computed | None
    ) -> Callable[[Any], tuple[Any, ...]]:
        get = attrgetter(*(path for _, path, _ in stored))
        single = len(stored) == 1
        convert = [
            (i, write)
            for i, (column, _, hint) in enumerate(stored)
            if (write := _converters(self.table, column, hint)[0]) is not None
        ]
        order = [c for c, _, _ in stored] + list(computed.columns if computed else ())
        pick = itemgetter(*(order.index(c) for c in self.columns))
        extra = computed.values if computed else None

        def encode(row: Any) -> tuple[Any, ...]:
            values = [get(row)] if single else list(get(row))
            for i, write in convert:
                values[i] = write(values[i])
            if extra is not None:
                values.extend(extra(row))
            return pick(values)  # type: ignore[no-any-return]

        return encode

    def _decoder(
        self, stored: list[tuple[str, str, Any]], flatten: Sequence[str]
    ) -> Callable[[Any], Any]:
        def reader(column: str, hint: Any) -> Callable[[Any], Any]:
            i, read = self.columns.index(column), _converters(self.table, column, hint)[1]
            return itemgetter(i) if read is None else lambda r: read(r[i])

        readers: dict[str, list[Callable[[Any], Any]]] = {}
        for column, path, hint in stored:
            readers.setdefault(path.split(".")[0], []).append(reader(column, hint))
        hints = typing.get_type_hints(self.cls)
        fields = [
            _embedded(hints[name], parts) if name in flatten else parts[0]
            for name, parts in readers.items()
        ]
        cls = self.cls
        return lambda record: cls(*(f(record) for f in fields))

    def _upsert_statement(self) -> Statement:
        columns = list(self.table.columns)
        parts = {
            "table": qualified(self.table),
            "columns": column_list(columns),
            "key": key_columns(self.table),
            "updates": assignments(self.table, "excluded"),
        }
        if self.bulk:
            return statement("rows/upsert_bulk", arrays=array_params(columns), **parts)
        upsert = statement("rows/upsert_each", values=value_params(columns), **parts)
        if upsert.params != self.columns:
            raise LayoutError(f"the upsert of {self.table.name} binds {upsert.params}")
        return upsert

    @property
    def name(self) -> Sql:
        """The table's qualified name."""
        return qualified(self.table)

    @property
    def select(self) -> Sql:
        """The column list, qualified with the alias ``x``."""
        return column_list(self.table.columns, "x")

    def select_keys(self) -> Statement:
        """The rows with given keys: one array parameter per key column, named after it."""
        return _select_keys(self)

    async def upsert(self, db: Any, rows: Sequence[Any]) -> None:
        """Insert or replace ``rows`` (one statement for bulk tables)."""
        records = [self.encode(r) for r in rows]
        if self.bulk:
            arrays = map(list, zip(*records, strict=True))
            await self._upsert.execute(db, **dict(zip(self.columns, arrays, strict=True)))
        else:
            await db.executemany(self._upsert.sql, records)

    async def copy(self, db: Any, rows: Sequence[Any]) -> None:
        """Insert rows the table does not hold yet, with COPY."""
        await db.copy_records_to_table(
            self.table.name,
            schema_name=self.table.schema,
            columns=list(self.columns),
            records=[self.encode(r) for r in rows],
        )


@cache
def _select_keys(codec: TableCodec) -> Statement:
    key = [codec.table.columns[k] for k in codec.key]
    return statement(
        "rows/select_keys",
        columns=codec.select,
        table=codec.name,
        arrays=array_params(key),
        key=key_columns(codec.table),
        match=key_match(codec.table, "k", "x"),
    )


TAG_DERIVED: Mapping[str, Callable[[ParsedTag], Any]] = {
    "image_type": lambda p: p.image_type.value,
    "type_rank": lambda p: p.image_type.rank,
    "sort_text": sort_text,
    "display_name": attrgetter("display_name"),
    "version": lambda p: str(p.version) if p.version is not None else None,
    "cycle": attrgetter("cycle"),
    "cycle_build": attrgetter("cycle_build"),
    "build": attrgetter("build"),
    "extra": attrgetter("extra"),
    "architecture": attrgetter("architecture"),
    "tag_date": attrgetter("date"),
}
"""The rule of each column of ``ledger.tags`` that the tag's name determines."""

_TAG_DERIVED_ORDER = tuple(c for c in names(schema.tags.columns) if c in TAG_DERIVED)
_TAG_RULES = tuple(TAG_DERIVED[c] for c in _TAG_DERIVED_ORDER)


@lru_cache(maxsize=65536)
def tag_columns(tag: str) -> tuple[Any, ...]:
    """The derived columns of a tag, from the domain's tag grammar, in table order."""
    parsed = parse_tag(tag)
    return tuple(rule(parsed) for rule in _TAG_RULES)


CODECS: dict[type[Any], TableCodec] = {
    TagRow: TableCodec(
        schema.tags,
        TagRow,
        computed=Computed(_TAG_DERIVED_ORDER, lambda row: tag_columns(row.tag)),
    ),
    TagInterval: TableCodec(schema.tag_history, TagInterval),
    NodeRow: TableCodec(schema.nodes, NodeRow),
    NodeImageRow: TableCodec(schema.node_images, NodeImageRow),
    PresenceRow: TableCodec(schema.image_presence, PresenceRow),
    RefreshRow: TableCodec(schema.refreshes, RefreshRow),
    PolicyRow: TableCodec(schema.policies, PolicyRow, flatten=("prepull",)),
}
"""Each projection row class with its table codec (``schema.PROJECTION_TABLES``)."""

if [c.table for c in CODECS.values()] != list(schema.PROJECTION_TABLES):
    raise LayoutError("CODECS and schema.PROJECTION_TABLES name different tables")
