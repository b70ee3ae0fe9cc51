"""Rebuild: empty the projection tables and fold the whole log again, in position order.

One transaction holds the append lock from start to commit, so no append interleaves and
readers see the old projections until the new ones are complete. Inside it:

- repository events (tags, refreshes, policies: few) are read in position ranges and folded
  in Python by the domain's rules;
- node and prepull events (most of the log) are folded set-based (``nodefold``) by ``workers``
  extra connections at once, each owning the nodes of one hash partition and writing into
  unlogged staging tables, range by range in position order; then the transaction copies
  the staging rows into ``ledger.nodes`` / ``ledger.node_images`` once and counts
  ``ledger.image_presence``.

The process reads the log in position ranges and keeps only the repository rows, so its
memory stays flat whatever the length of the log.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import cattrs
import structlog
from attrs import frozen
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger import schema
from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.eventlog import EventLog, LedgerTransaction, log_head
from worker.adapters.ledger.layout import (
    column_list,
    create_staging,
    key_columns,
    qualified,
    staging_table,
)
from worker.adapters.ledger.nodefold import (
    FOLD_PARAMETERS,
    NODE_EVENT_TYPES,
    count_presence,
    replay_statement,
)
from worker.adapters.ledger.projections import WorkingSet, write
from worker.adapters.ledger.statements import Sql, Statement, compose, identifier, join, statement
from worker.converter import converter as default_converter
from worker.domain.events import Event

__all__ = ["Progress", "RebuildReport", "rebuild"]

Progress = Callable[[int, int], None]
"""Called as the replay advances with (position reached, last position of the log)."""

log = structlog.get_logger(__name__)

_REPOSITORY_EVENTS = statement("rebuild/repository_events")
_SECONDARY_INDEXES = statement("rebuild/secondary_indexes")


def _ddl(template: str, **parts: Sql) -> Statement:
    """A one-line DDL statement on names (DDL takes no parameters)."""
    return Statement(compose(Sql(template), **parts))


def _primary_key(table: Table) -> Sql:
    """The name of a table's primary key constraint (PostgreSQL's default unless named)."""
    name = table.primary_key.name
    return identifier(name if isinstance(name, str) else f"{table.name}_pkey")


CHUNK = 100_000
"""Positions folded per step by default."""

MAX_RANGES = 10
"""By default a replay reads a long log in at most this many position ranges: each range's
fold joins its keys with the whole staging table, so the number of ranges, not their size,
multiplies that work."""


@frozen
class RebuildReport:
    """What a rebuild did."""

    events: int
    rows_written: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        """Throughput."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def rebuild(
    engine: AsyncEngine,
    *,
    chunk: int | None = None,
    workers: int = 2,
    progress: Progress | None = None,
    after: Callable[[LedgerTransaction], Awaitable[None]] | None = None,
    conv: cattrs.Converter | None = None,
) -> RebuildReport:
    """Truncate the projections and fold every event again; ``after`` runs before commit
    (for rows derived from the projections, such as images and the menu).

    ``chunk`` is the number of positions folded per step; by default ``CHUNK``, or
    a ``MAX_RANGES``-th of the log when that is more.
    """
    conv = conv or default_converter
    started = time.perf_counter()
    staging = _Staging(engine, workers)
    try:
        async with EventLog(engine, conv).transaction() as tx:
            head, written = await _replay(tx, conv, staging, chunk, progress)
            if after is not None:
                await after(tx)
    finally:
        await staging.drop()
    report = RebuildReport(head, written, time.perf_counter() - started)
    log.info(
        "projections rebuilt",
        events=report.events,
        rows=report.rows_written,
        seconds=round(report.seconds, 2),
        events_per_second=round(report.events_per_second),
    )
    return report


async def _replay(
    tx: LedgerTransaction,
    conv: cattrs.Converter,
    staging: _Staging,
    chunk: int | None,
    progress: Progress | None,
) -> tuple[int, int]:
    db = tx.driver
    async with translate_errors("rebuild the projections"):
        head = await log_head(db)
        if chunk is None:
            chunk = max(CHUNK, -(-head // MAX_RANGES))
        await staging.create()
        tables = join(qualified(t) for t in schema.PROJECTION_TABLES)
        await _ddl("TRUNCATE {{tables}}", tables=tables).execute(db)
        tracker = _Tracker(head, staging.workers + 1, progress)
        results = await asyncio.gather(
            _replay_repositories(db, conv, head, chunk, tracker),
            *(staging.replay(k, head, chunk, tracker) for k in range(staging.workers)),
        )
        written = sum(results) + await staging.publish(db)
        await count_presence(db)
    return head, written


class _Tracker:
    """Progress over several replays that each go through every position."""

    def __init__(self, head: int, replays: int, progress: Progress | None) -> None:
        self.head, self.progress = head, progress
        self.reached = [0] * replays
        if progress is not None:
            progress(0, head)

    def advance(self, replay: int, position: int) -> None:
        self.reached[replay] = position
        if self.progress is not None:
            self.progress(min(self.reached), self.head)


async def _replay_repositories(
    db: Any, conv: cattrs.Converter, head: int, chunk: int, tracker: _Tracker
) -> int:
    """Fold the repository events in Python, range by range."""
    ws = WorkingSet(complete=True)
    written = 0
    for after in range(0, head, chunk):
        upto = min(after + chunk, head)
        records = await _REPOSITORY_EVENTS.fetch(
            db, after=after, upto=upto, node_types=list(NODE_EVENT_TYPES)
        )
        events: list[Event] = [
            conv.structure({"type": r[0], "version": r[1], "data": r[2]}, Event)  # type: ignore[arg-type]
            for r in records
        ]
        if events:
            ws.fold(events)
            written += await write(db, ws)
        tracker.advance(len(tracker.reached) - 1, upto)
    return written


class _Staging:
    """Unlogged tables, one pair per partition, that workers fold node events into.

    They are copies of the table objects of ``ledger.nodes`` and ``ledger.node_images``
    (``layout.staging_table``), created without keys or indexes: a range's fold finds the old rows
    it needs by one hash join (``nodefold``) and updates them by row id, so index upkeep
    row by row would be work for nothing (it was a fifth of the rebuild).
    """

    def __init__(self, engine: AsyncEngine, workers: int) -> None:
        self.engine = engine
        self.workers = workers
        tag = f"rebuild_{uuid.uuid4().hex[:8]}"
        self._tables = [
            (
                staging_table(schema.nodes, f"{tag}_nodes_{k}"),
                staging_table(schema.node_images, f"{tag}_images_{k}"),
            )
            for k in range(workers)
        ]
        self.created = False

    def tables(self, k: int) -> tuple[Table, Table]:
        """Partition ``k``'s copies of ``ledger.nodes`` and ``ledger.node_images``."""
        return self._tables[k]

    async def _execute(self, *statements: Statement) -> None:
        async with self.engine.connect() as connection:
            raw: Any = (await connection.get_raw_connection()).driver_connection
            for statement in statements:
                await statement.execute(raw)

    async def create(self) -> None:
        """Create the tables."""
        self.created = True
        for k in range(self.workers):
            await self._execute(*(Statement(create_staging(t)) for t in self.tables(k)))

    async def replay(self, k: int, head: int, chunk: int, tracker: _Tracker) -> int:
        """Fold partition ``k``'s node events into its staging tables, in position order."""
        replay = replay_statement(*self.tables(k))
        types = list(NODE_EVENT_TYPES)
        written = 0
        async with (
            translate_errors("rebuild the node projections"),
            self.engine.connect() as connection,
        ):
            raw: Any = (await connection.get_raw_connection()).driver_connection
            for after in range(0, head, chunk):
                upto = min(after + chunk, head)
                written += int(
                    await replay.fetchval(
                        raw,
                        after=after,
                        upto=upto,
                        types=types,
                        partitions=self.workers,
                        partition=k,
                        **FOLD_PARAMETERS,
                    )
                )
                tracker.advance(k, upto)
        return written

    async def publish(self, db: Any) -> int:
        """Copy every partition's rows into the projection tables (in ``db``'s transaction).

        ``ledger.node_images`` is large: its indexes (whatever the migrations made them) are
        rebuilt after the copy rather than maintained row by row (all inside the
        transaction, so readers never see them gone).
        """
        images = schema.node_images
        names = {"table": qualified(images), "key": _primary_key(images)}
        await db.execute("SET LOCAL maintenance_work_mem = '256MB'")
        indexes = await _SECONDARY_INDEXES.fetch(
            db, schema=images.schema, table=images.name, primary_key=names["key"].text
        )
        await _ddl("ALTER TABLE {{table}} DROP CONSTRAINT {{key}}", **names).execute(db)
        for index in indexes:
            name = identifier(f"{images.schema}.{index['indexname']}")
            await _ddl("DROP INDEX {{index}}", index=name).execute(db)
        copied = 0
        for k in range(self.workers):
            for target, source in zip((schema.nodes, images), self.tables(k), strict=True):
                copy = _ddl(
                    "INSERT INTO {{target}} ({{columns}}) SELECT {{columns}} FROM {{source}}",
                    target=qualified(target),
                    source=qualified(source),
                    columns=column_list(target.columns),
                )
                copied += int((await copy.execute(db)).split()[-1])
        add_key = "ALTER TABLE {{table}} ADD CONSTRAINT {{key}} PRIMARY KEY ({{columns}})"
        await _ddl(add_key, columns=key_columns(images), **names).execute(db)
        for index in indexes:
            await db.execute(index["indexdef"])
        return copied

    async def drop(self) -> None:
        """Drop the tables (after the rebuild transaction ended, which reads them)."""
        if self.created:
            tables = join(qualified(t) for k in range(self.workers) for t in self.tables(k))
            await self._execute(_ddl("DROP TABLE IF EXISTS {{tables}}", tables=tables))
