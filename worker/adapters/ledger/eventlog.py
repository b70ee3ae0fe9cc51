"""The event log: append events and fold the projections in one transaction; read by position.

Every append transaction first takes one transaction-scoped advisory lock, so appends are
serialized: ``position`` is dense (max + 1, no sequence gaps) and position order equals
commit order, so a reader tailing by position never skips an event. An event whose
``idempotency_key`` is already stored adds nothing and is not an error: the insert skips
keys already in the log, which under the lock is exact, so it needs no ``ON CONFLICT``
(speculative insertion costs a fifth of the insert); the unique index still refuses a
duplicate written around the lock. The projection rows the new events touch are folded in
the same transaction (``worker.domain.ledger``): node and prepull events by the statement
that appends them (``worker.adapters.ledger.nodefold``), repository events in Python after it (the
two touch different tables).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, NamedTuple

import cattrs
import structlog
from attrs import frozen
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.layout import array_params, check_fields, column_list, names
from worker.adapters.ledger.nodefold import FOLD_PARAMETERS, append_statement
from worker.adapters.ledger.projections import fetch_rows as _fetch
from worker.adapters.ledger.projections import fold_repository_events, is_node_event
from worker.adapters.ledger.rows import CODECS
from worker.adapters.ledger.schema import events as events_table
from worker.adapters.ledger.statements import Sql, Statement, compose, load, statement
from worker.converter import converter as default_converter
from worker.domain.events import Event, stream_of
from worker.domain.inventory import Presence
from worker.domain.projection import NodeRow, TagRow

__all__ = [
    "APPEND_STATEMENTS",
    "GENERIC_PLAN",
    "LOCK_KEY",
    "SESSION_PLAN",
    "AppendResult",
    "EventLog",
    "EventRow",
    "LedgerTransaction",
    "NewEvent",
    "Prepared",
    "RecordedEvent",
    "content_key",
    "log_head",
    "prepare_rows",
]

LOCK_KEY = int.from_bytes(hashlib.sha256(b"imageledger.events").digest()[:8], "big", signed=True)
"""The advisory lock that serializes appends (and rebuilds)."""

log = structlog.get_logger(__name__)


class EventRow(NamedTuple):
    """A ``ledger.events`` row as an append writes it: the append numbers it (``position``)
    and the database stamps it (``recorded_at``)."""

    stream: str
    type: str
    version: int
    data: str
    occurred_at: datetime
    idempotency_key: str
    causation: str | None


_WRITTEN = [c for c in events_table.columns if not c.primary_key and c.server_default is None]
check_fields(names(_WRITTEN), EventRow._fields, "EventRow")

_HEAD = load("eventlog/head")
_HEAD_STATEMENT = Statement(_HEAD)
_APPEND = compose(
    load("eventlog/append"),
    arrays=array_params(_WRITTEN),
    columns=column_list(_WRITTEN),
    fresh_columns=column_list(_WRITTEN, "fresh"),
    head=_HEAD,
)
_RESULT = Sql("position, idempotency_key")

_INSERT = statement("eventlog/insert", append=_APPEND, result=_RESULT)
"""Append events whose keys are not in the log yet, at the next positions."""

_INSERT_AND_FOLD = Statement(append_statement(_APPEND, _RESULT))
"""Append events and fold the node and prepull events among them, in one statement."""

APPEND_STATEMENTS = (_INSERT.sql, _INSERT_AND_FOLD.sql)
"""The statements an append runs, as asyncpg prepares them (for the plan check)."""

_LOCK = Statement("SELECT pg_advisory_xact_lock(:key)")
_READ = statement("eventlog/read", columns=column_list(events_table.columns))
_NODE_PRESENCE = Statement(
    "SELECT digest, present, observed_at, source FROM ledger.node_images"
    " WHERE node = :node AND present IS NOT NULL"
)

GENERIC_PLAN = "SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off"
"""Set around the append statement: one plan, made once per connection, without table scans.

Planning the append statement costs about as much as a tenth of running it, so it runs on
a generic plan, unlike every other statement (``SERVER_SETTINGS``). That plan is made when
the statement is first prepared, maybe on nearly empty tables, so it must not depend on
table sizes: every read of ``events``, ``nodes`` and ``node_images`` is a key probe (``OFFSET
0`` subqueries; updates go by the row ids those probes read), and seq scans are off while it
is planned, as they would look cheapest on small tables.
``tests/integration/test_eventlog_plan.py`` checks the plan made on empty tables."""

SESSION_PLAN = "SET LOCAL plan_cache_mode TO DEFAULT; SET LOCAL enable_seqscan TO DEFAULT"
"""Back to the session's settings for the rest of the ledger transaction."""


@frozen
class NewEvent:
    """An event to append, with its idempotency key (default: a hash of its content)
    and its causation (the id of the message that caused it)."""

    event: Event
    idempotency_key: str | None = None
    causation: str | None = None


@frozen
class RecordedEvent:
    """An event as stored in the log."""

    position: int
    stream: str
    event: Event
    idempotency_key: str
    causation: str | None
    recorded_at: datetime


@frozen
class AppendResult:
    """What an append stored: positions of the new events, and how many were already there."""

    positions: tuple[int, ...]
    duplicates: int

    @property
    def appended(self) -> int:
        """How many events were new."""
        return len(self.positions)


def content_key(type_name: str, version: int, data_json: str) -> str:
    """The default idempotency key: a hash of the event's type, version and payload JSON."""
    digest = hashlib.sha256(f"{type_name}\x00{version}\x00{data_json}".encode()).hexdigest()
    return "sha256:" + digest


def prepare_rows(
    items: Sequence[NewEvent | Event], conv: cattrs.Converter
) -> tuple[list[Event], list[EventRow]]:
    """Events and their ``ledger.events`` rows, without repeated keys (the first
    occurrence wins)."""
    events: list[Event] = []
    rows: list[EventRow] = []
    seen: set[str] = set()
    dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
    for item in items:
        if isinstance(item, NewEvent):
            event, key, causation = item.event, item.idempotency_key, item.causation
        else:
            event, key, causation = item, None, None
        cls = type(event)
        data = dumps(conv.unstructure(event, cls))
        key = key or content_key(cls.TYPE, cls.VERSION, data)
        if key in seen:
            continue
        seen.add(key)
        events.append(event)
        rows.append(
            EventRow(
                stream_of(event), cls.TYPE, cls.VERSION, data, event.occurred_at, key, causation
            )
        )
    return events, rows


class Prepared:
    """Events serialized into ``ledger.events`` rows, ready to append."""

    def __init__(self, items: Sequence[NewEvent | Event], conv: cattrs.Converter) -> None:
        self.items = items
        self.events, self.rows = prepare_rows(items, conv)


class LedgerTransaction:
    """One serialized write transaction: append events, read what a decision needs.

    Obtained from ``EventLog.transaction()``; the advisory lock is already held, so what
    it reads cannot change before it commits.
    """

    def __init__(self, db: Any, conv: cattrs.Converter) -> None:
        self._db = db
        self._conv = conv

    @property
    def driver(self) -> Any:
        """The asyncpg connection (for this package's adapters only)."""
        return self._db

    async def append(self, items: Sequence[NewEvent | Event]) -> AppendResult:
        """Append events in order and fold the new ones into the projections."""
        return await self.append_prepared(Prepared(items, self._conv))

    async def append_prepared(self, prepared: Prepared) -> AppendResult:
        """Append events serialized beforehand (outside the lock, by ``Prepared``)."""
        items, events, rows = prepared.items, prepared.events, prepared.rows
        if not rows:
            return AppendResult((), len(items))
        values = dict(zip(EventRow._fields, map(list, zip(*rows, strict=True)), strict=True))
        append = _INSERT
        if any(map(is_node_event, events)):
            append, values = _INSERT_AND_FOLD, {**values, **FOLD_PARAMETERS}
        async with translate_errors("append to the event log"):
            await self._db.execute(GENERIC_PLAN)
            stored = await append.fetch(self._db, **values)
            await self._db.execute(SESSION_PLAN)
            position_of = {r["idempotency_key"]: r["position"] for r in stored}
            fresh = [
                e for e, row in zip(events, rows, strict=True) if row.idempotency_key in position_of
            ]
            await fold_repository_events(self._db, fresh)
        positions = tuple(sorted(position_of.values()))
        return AppendResult(positions, len(items) - len(positions))

    async def node(self, name: str) -> NodeRow | None:
        """The projection row of a node, if it was ever seen."""
        async with translate_errors("read a node"):
            rows = await _fetch(self._db, CODECS[NodeRow], "WHERE x.node = :node", node=name)
        return rows[0] if rows else None

    async def node_presence(self, node: str) -> dict[str, Presence]:
        """What is known of each digest on a node (for ``decide_inventory``)."""
        async with translate_errors("read a node's images"):
            records = await _NODE_PRESENCE.fetch(self._db, node=node)
        return {r[0]: Presence(r[1], r[2], r[3]) for r in records}

    async def tags(self, registry: str, repository: str) -> list[TagRow]:
        """Every tag row of a repository, removed ones included (``removed_at`` set)."""
        async with translate_errors("read tags"):
            return await _fetch(
                self._db,
                CODECS[TagRow],
                "WHERE x.registry = :registry AND x.repository = :repository ORDER BY x.tag",
                registry=registry,
                repository=repository,
            )


class EventLog:
    """The append-only log of ``ledger.events`` and its inline projections."""

    def __init__(self, engine: AsyncEngine, conv: cattrs.Converter | None = None) -> None:
        self._engine = engine
        self._conv = conv or default_converter

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[LedgerTransaction]:
        """A write transaction holding the append lock; commits when the block ends.

        The pool lends the connection; the transaction is asyncpg's own, as every statement
        in it is (SQLAlchemy's would add a millisecond and a half to every append).
        """
        async with translate_errors("open a ledger transaction"), self._engine.connect() as conn:
            db: Any = (await conn.get_raw_connection()).driver_connection
            async with db.transaction():
                await _LOCK.execute(db, key=LOCK_KEY)
                yield LedgerTransaction(db, self._conv)

    async def append(self, items: Sequence[NewEvent | Event]) -> AppendResult:
        """Append events (with their projections) in one transaction of their own.

        The events are serialized before the append lock is taken, so concurrent appenders
        only queue for the database work.
        """
        prepared = Prepared(items, self._conv)
        async with self.transaction() as tx:
            return await tx.append_prepared(prepared)

    async def read(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Events with a position greater than ``after``, in position order."""
        async with translate_errors("read the event log"), self._engine.connect() as conn:
            result = await conn.execute(_READ.clause, {"after": after, "limit": limit})
            return [self._recorded(r._mapping) for r in result]

    def _recorded(self, row: Any) -> RecordedEvent:
        data = row["data"]
        tagged = {
            "type": row["type"],
            "version": row["version"],
            "data": json.loads(data) if isinstance(data, str) else data,
        }
        return RecordedEvent(
            position=row["position"],
            stream=row["stream"],
            event=self._conv.structure(tagged, Event),  # type: ignore[arg-type]
            idempotency_key=row["idempotency_key"],
            causation=row["causation"],
            recorded_at=row["recorded_at"],
        )

    async def head(self) -> int:
        """The position of the last event (0 for an empty log)."""
        async with translate_errors("read the event log"), self._engine.connect() as conn:
            return await log_head(conn)


async def log_head(db: AsyncConnection | Any) -> int:
    """The position of the log's last event (0 for an empty log), as ``db`` sees it: a
    SQLAlchemy ``AsyncConnection`` (in its transaction's snapshot), or an asyncpg
    connection (a ledger transaction's: its own appends included). The one reader of the
    head; the append statement reads it with the same SQL (``sql/eventlog/head.sql``)."""
    if isinstance(db, AsyncConnection):
        return int((await db.execute(_HEAD_STATEMENT.clause)).scalar_one())
    return int(await _HEAD_STATEMENT.fetchval(db))
