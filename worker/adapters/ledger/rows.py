"""How each projection row class maps to its ``ledger`` table: columns, decoding, upserts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import lru_cache
from operator import attrgetter
from typing import Any

import attrs
from attrs import frozen

from worker.converter import converter
from worker.domain.events import RequestCount
from worker.domain.nodes import Taint, Toleration
from worker.domain.policy import DropdownPolicy, PrepullPolicy
from worker.domain.projection import (
    NodeImageRow,
    NodeRow,
    PolicyRow,
    PresenceRow,
    RefreshRow,
    TagInterval,
    TagRow,
)
from worker.domain.tags import parse_tag, sort_text

__all__ = ["CODECS", "TableCodec", "tag_columns"]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@frozen
class TableCodec:
    """A table, its columns with SQL types, its key, and row <-> record functions."""

    table: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    encode: Callable[[Any], tuple[Any, ...]]
    decode: Callable[[Any], Any]
    bulk: bool = True

    @property
    def select(self) -> str:
        """The column list, qualified with the alias ``x``."""
        return ", ".join(f"x.{name}" for name, _ in self.columns)

    def _upsert_sql(self, source: str) -> str:
        names = ", ".join(name for name, _ in self.columns)
        updates = ", ".join(f"{n} = EXCLUDED.{n}" for n, _ in self.columns if n not in self.key)
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        return (
            f"INSERT INTO {self.table} ({names}) {source} "
            f"ON CONFLICT ({', '.join(self.key)}) {action}"
        )

    async def upsert(self, db: Any, rows: Sequence[Any]) -> None:
        """Insert or replace ``rows`` (one statement for bulk tables)."""
        records = [self.encode(r) for r in rows]
        if self.bulk:
            casts = ", ".join(f"${i}::{t}[]" for i, (_, t) in enumerate(self.columns, 1))
            sql = self._upsert_sql(f"SELECT * FROM unnest({casts})")
            await db.execute(sql, *(list(c) for c in zip(*records, strict=True)))
        else:
            values = ", ".join(f"${i}" for i in range(1, len(self.columns) + 1))
            await db.executemany(self._upsert_sql(f"VALUES ({values})"), records)

    async def copy(self, db: Any, rows: Sequence[Any]) -> None:
        """Insert rows the table does not hold yet, with COPY."""
        schema, _, table = self.table.partition(".")
        await db.copy_records_to_table(
            table,
            schema_name=schema,
            columns=[name for name, _ in self.columns],
            records=[self.encode(r) for r in rows],
        )


def _fields(cls: type[Any]) -> tuple[str, ...]:
    return tuple(a.name for a in attrs.fields(cls))


@lru_cache(maxsize=65536)
def tag_columns(tag: str) -> tuple[Any, ...]:
    """The derived columns of a tag, from the domain's tag grammar."""
    parsed = parse_tag(tag)
    version = str(parsed.version) if parsed.version is not None else None
    return (
        parsed.image_type.value,
        parsed.image_type.rank,
        sort_text(parsed),
        parsed.display_name,
        version,
        parsed.cycle,
        parsed.cycle_build,
        parsed.build,
        parsed.extra,
        parsed.architecture,
        parsed.date,
    )


_TAG_FIELDS = attrgetter(*_fields(TagRow))
_TAG_DERIVED = (
    ("image_type", "text"),
    ("type_rank", "smallint"),
    ("sort_text", "text"),
    ("display_name", "text"),
    ("version", "text"),
    ("cycle", "integer"),
    ("cycle_build", "integer"),
    ("build", "integer"),
    ("extra", "text"),
    ("architecture", "text"),
    ("tag_date", "timestamptz"),
)
_TAGS = TableCodec(
    "ledger.tags",
    (
        ("registry", "text"),
        ("repository", "text"),
        ("tag", "text"),
        ("digest", "text"),
        ("first_seen_at", "timestamptz"),
        ("changed_at", "timestamptz"),
        ("removed_at", "timestamptz"),
        ("history_seq", "integer"),
        *_TAG_DERIVED,
    ),
    ("registry", "repository", "tag"),
    lambda row: (*_TAG_FIELDS(row), *tag_columns(row.tag)),
    lambda r: TagRow(*tuple(r)[:8]),
)

_HISTORY = TableCodec(
    "ledger.tag_history",
    (
        ("registry", "text"),
        ("repository", "text"),
        ("tag", "text"),
        ("seq", "integer"),
        ("digest", "text"),
        ("valid_from", "timestamptz"),
        ("valid_until", "timestamptz"),
    ),
    ("registry", "repository", "tag", "seq"),
    attrgetter(*_fields(TagInterval)),
    lambda r: TagInterval(*r),
)

_NODE_FIELDS = _fields(NodeRow)
_NODE_GET = attrgetter(*_NODE_FIELDS)


def _encode_node(row: NodeRow) -> tuple[Any, ...]:
    values = list(_NODE_GET(row))
    values[2] = _json(dict(row.labels))
    values[3] = _json(converter.unstructure(row.taints, tuple[Taint, ...]))
    return tuple(values)


def _decode_node(r: Any) -> NodeRow:
    values = list(r)
    values[2] = _loads(values[2])
    values[3] = converter.structure(_loads(values[3]), tuple[Taint, ...])
    return NodeRow(*values)


_NODE_TYPES = {
    "node": "text",
    "first_seen_at": "timestamptz",
    "labels": "jsonb",
    "taints": "jsonb",
    "eligible": "boolean",
    "comment": "text",
    "truncated": "boolean",
    "image_count": "integer",
}
_NODES = TableCodec(
    "ledger.nodes",
    tuple((n, _NODE_TYPES.get(n, "timestamptz")) for n in _NODE_FIELDS),
    ("node",),
    _encode_node,
    _decode_node,
)

_IMAGE_TYPES = {
    "node": "text",
    "digest": "text",
    "present": "boolean",
    "source": "text",
    "size_bytes": "bigint",
    "prepull_state": "text",
    "prepull_requests": "integer",
    "prepull_failures": "integer",
    "prepull_failures_total": "integer",
    "prepull_reason": "text",
    "registry": "text",
    "repository": "text",
    "tag": "text",
}
_NODE_IMAGES = TableCodec(
    "ledger.node_images",
    tuple((n, _IMAGE_TYPES.get(n, "timestamptz")) for n in _fields(NodeImageRow)),
    ("node", "digest"),
    attrgetter(*_fields(NodeImageRow)),
    lambda r: NodeImageRow(*r),
)

_PRESENCE = TableCodec(
    "ledger.image_presence",
    (("digest", "text"), ("eligible_nodes", "integer")),
    ("digest",),
    attrgetter("digest", "eligible_nodes"),
    lambda r: PresenceRow(*r),
)

_REFRESH_FIELDS = _fields(RefreshRow)
_REFRESH_GET = attrgetter(*_REFRESH_FIELDS)
_REFRESH_TYPES = {"requests": "jsonb", "flagged_tags": "text[]", "rate_limits": "jsonb"}


def _encode_refresh(row: RefreshRow) -> tuple[Any, ...]:
    values = dict(zip(_REFRESH_FIELDS, _REFRESH_GET(row), strict=True))
    values["requests"] = _json(converter.unstructure(row.requests, tuple[RequestCount, ...]))
    values["flagged_tags"] = list(row.flagged_tags)
    values["rate_limits"] = _json(dict(row.rate_limits))
    return tuple(values.values())


def _decode_refresh(r: Any) -> RefreshRow:
    values = dict(zip(_REFRESH_FIELDS, r, strict=True))
    values["requests"] = converter.structure(_loads(values["requests"]), tuple[RequestCount, ...])
    values["flagged_tags"] = tuple(values["flagged_tags"])
    values["rate_limits"] = _loads(values["rate_limits"])
    return RefreshRow(**values)


_REFRESHES = TableCodec(
    "ledger.refreshes",
    tuple((n, _REFRESH_TYPES.get(n, "text")) for n in _REFRESH_FIELDS),
    ("refresh_id",),
    _encode_refresh,
    _decode_refresh,
    bulk=False,
)


def _encode_policy(row: PolicyRow) -> tuple[Any, ...]:
    p = row.prepull
    return (
        row.registry,
        row.repository,
        row.configured_at,
        p.recommended_tag,
        p.num_releases,
        p.num_weeklies,
        p.num_dailies,
        p.cycle,
        list(p.pin),
        list(p.alias_tags),
        _json(converter.unstructure(row.dropdown, DropdownPolicy)),
        _json(dict(row.node_selector)),
        _json(converter.unstructure(row.tolerations, tuple[Toleration, ...])),
    )


def _decode_policy(r: Any) -> PolicyRow:
    (registry, repository, at, recommended, releases, weeklies, dailies, cycle, pin, aliases,
     dropdown, selector, tolerations) = r  # fmt: skip
    prepull = PrepullPolicy(
        recommended, releases, weeklies, dailies, cycle, tuple(pin), tuple(aliases)
    )
    return PolicyRow(
        registry,
        repository,
        at,
        prepull,
        converter.structure(_loads(dropdown), DropdownPolicy),
        _loads(selector),
        converter.structure(_loads(tolerations), tuple[Toleration, ...]),
    )


_POLICIES = TableCodec(
    "ledger.policies",
    (
        ("registry", "text"),
        ("repository", "text"),
        ("configured_at", "timestamptz"),
        ("recommended_tag", "text"),
        ("num_releases", "integer"),
        ("num_weeklies", "integer"),
        ("num_dailies", "integer"),
        ("cycle", "integer"),
        ("pin", "text[]"),
        ("alias_tags", "text[]"),
        ("dropdown", "jsonb"),
        ("node_selector", "jsonb"),
        ("tolerations", "jsonb"),
    ),
    ("registry", "repository"),
    _encode_policy,
    _decode_policy,
    bulk=False,
)

CODECS: dict[type[Any], TableCodec] = {
    TagRow: _TAGS,
    TagInterval: _HISTORY,
    NodeRow: _NODES,
    NodeImageRow: _NODE_IMAGES,
    PresenceRow: _PRESENCE,
    RefreshRow: _REFRESHES,
    PolicyRow: _POLICIES,
}
"""Each projection row class with its table codec."""
