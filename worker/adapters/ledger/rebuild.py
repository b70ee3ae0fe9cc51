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
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.eventlog import EventLog, LedgerTransaction
from worker.adapters.ledger.nodefold import NODE_EVENT_TYPES, count_presence, replay_sql
from worker.adapters.ledger.projections import WorkingSet, write
from worker.adapters.ledger.schema import PROJECTION_TABLES
from worker.converter import converter as default_converter
from worker.domain.events import Event

__all__ = ["Progress", "RebuildReport", "rebuild"]

Progress = Callable[[int, int], None]
"""Called as the replay advances with (position reached, last position of the log)."""

log = structlog.get_logger(__name__)

_IMAGES_KEY = "node_images_pkey"
_SECONDARY_INDEXES = f"""
SELECT indexname, indexdef FROM pg_indexes
WHERE schemaname = 'ledger' AND tablename = 'node_images' AND indexname <> '{_IMAGES_KEY}'
ORDER BY indexname
"""

_REPOSITORY_EVENTS = """
SELECT type, version, data FROM ledger.events
WHERE position > $1 AND position <= $2 AND type <> ALL($3::text[])
ORDER BY position
"""


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
        head = int(await db.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events"))
        if chunk is None:
            chunk = max(CHUNK, -(-head // MAX_RANGES))
        await staging.create()
        tables = ", ".join(f"ledger.{t.name}" for t in PROJECTION_TABLES)
        await db.execute(f"TRUNCATE {tables}")
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
        records = await db.fetch(_REPOSITORY_EVENTS, after, upto, list(NODE_EVENT_TYPES))
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
    """Unlogged tables, one pair per partition, that workers fold node events into."""

    def __init__(self, engine: AsyncEngine, workers: int) -> None:
        self.engine = engine
        self.workers = workers
        self.tag = f"rebuild_{uuid.uuid4().hex[:8]}"
        self.created = False

    def tables(self, k: int) -> tuple[str, str]:
        return f"ledger.{self.tag}_nodes_{k}", f"ledger.{self.tag}_images_{k}"

    async def _execute(self, *statements: str) -> None:
        async with self.engine.connect() as connection:
            raw: Any = (await connection.get_raw_connection()).driver_connection
            for statement in statements:
                await raw.execute(statement)

    async def create(self) -> None:
        """Create the tables (before the projections are truncated: LIKE reads them)."""
        self.created = True
        for k in range(self.workers):
            nodes, images = self.tables(k)
            # No indexes: a range's fold finds the old rows it needs by one hash join
            # (``nodefold``) and updates them by row id, so index upkeep row by row would
            # be work for nothing (it was a fifth of the rebuild).
            await self._execute(
                f"CREATE UNLOGGED TABLE {nodes} (LIKE ledger.nodes INCLUDING DEFAULTS)"
                " WITH (fillfactor = 70)",
                f"CREATE UNLOGGED TABLE {images} (LIKE ledger.node_images INCLUDING DEFAULTS)"
                " WITH (fillfactor = 70)",
            )

    async def replay(self, k: int, head: int, chunk: int, tracker: _Tracker) -> int:
        """Fold partition ``k``'s node events into its staging tables, in position order."""
        sql = replay_sql(*self.tables(k))
        written = 0
        async with (
            translate_errors("rebuild the node projections"),
            self.engine.connect() as connection,
        ):
            raw: Any = (await connection.get_raw_connection()).driver_connection
            for after in range(0, head, chunk):
                upto = min(after + chunk, head)
                args = (after, upto, list(NODE_EVENT_TYPES), self.workers, k)
                written += int(await raw.fetchval(sql, *args))
                tracker.advance(k, upto)
        return written

    async def publish(self, db: Any) -> int:
        """Copy every partition's rows into the projection tables (in ``db``'s transaction).

        ``ledger.node_images`` is large: its indexes (whatever the migrations made them) are
        rebuilt after the copy rather than maintained row by row (all inside the
        transaction, so readers never see them gone).
        """
        copied = 0
        await db.execute("SET LOCAL maintenance_work_mem = '256MB'")
        indexes = await db.fetch(_SECONDARY_INDEXES)
        await db.execute(f"ALTER TABLE ledger.node_images DROP CONSTRAINT {_IMAGES_KEY}")
        for index in indexes:
            await db.execute(f"DROP INDEX ledger.{index['indexname']}")
        for k in range(self.workers):
            nodes, images = self.tables(k)
            for target, source in (("ledger.nodes", nodes), ("ledger.node_images", images)):
                status = await db.execute(f"INSERT INTO {target} SELECT * FROM {source}")
                copied += int(status.split()[-1])
        key = f"ADD CONSTRAINT {_IMAGES_KEY} PRIMARY KEY (node, digest)"
        await db.execute(f"ALTER TABLE ledger.node_images {key}")
        for index in indexes:
            await db.execute(index["indexdef"])
        return copied

    async def drop(self) -> None:
        """Drop the tables (after the rebuild transaction ended, which reads them)."""
        if self.created:
            names = [t for k in range(self.workers) for t in self.tables(k)]
            await self._execute(f"DROP TABLE IF EXISTS {', '.join(names)}")
