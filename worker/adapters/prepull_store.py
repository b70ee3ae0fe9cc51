"""The worker's view of the ledger: one unit of work per batch, reads for decisions and planning.

``WorkStore.transaction()`` opens a ``LedgerTransaction`` (the append lock is held, so what
a unit reads cannot change before it commits) and yields a ``WorkUnit`` that speaks domain
types: known nodes, the planning snapshot, facts to append, messages for the outbox.
``LedgerStatus`` answers the health check and the gauges of ``/metrics``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.database import translate_errors
from worker.adapters.derived import images_states, log_head
from worker.adapters.eventlog import EventLog, LedgerTransaction, NewEvent
from worker.adapters.outbox import write_outbox
from worker.adapters.projections import fetch_rows
from worker.adapters.rows import CODECS
from worker.domain.changes import ImagesState, RepositoryKey
from worker.domain.images import Repository
from worker.domain.inventory import Presence
from worker.domain.ledger import NodeRow
from worker.domain.messages import Outgoing
from worker.domain.node_observation import KnownNode
from worker.domain.prepull import Fact, PairState, PlanInput, PrepullTarget

__all__ = ["LedgerStatus", "WorkStore", "WorkUnit"]

_TARGETS = (
    "SELECT registry, repository, tag, digest, position FROM ledger.prepull_targets"
    " WHERE pull AND digest IS NOT NULL ORDER BY position, tag"
)
_ELIGIBLE = "SELECT node FROM ledger.nodes WHERE eligible AND gone_at IS NULL ORDER BY node"
_PAIRS = (
    "SELECT node, digest, coalesce(present, false), prepull_state, prepull_requests,"
    " prepull_failures, prepull_deadline, prepull_finished_at, registry, repository, tag"
    " FROM ledger.node_images WHERE digest = ANY($1::text[]) OR prepull_state = 'requested'"
)
_PRESENCE = (
    "SELECT node, digest, present, observed_at, source FROM ledger.node_images"
    " WHERE node = ANY($1::text[]) AND present IS NOT NULL"
)
_PARKED = (
    "SELECT node, digest, coalesce(present, false), prepull_state, prepull_requests,"
    " prepull_failures, prepull_deadline, prepull_finished_at, registry, repository, tag"
    " FROM ledger.node_images WHERE node = ANY($1::text[]) AND prepull_state = 'parked'"
)
_TYPES = "SELECT type, count(*) FROM ledger.events WHERE position = ANY($1::bigint[]) GROUP BY type"


class WorkUnit:
    """One batch's transaction, in domain terms."""

    def __init__(self, tx: LedgerTransaction) -> None:
        self._tx = tx

    async def known_nodes(self, names: Iterable[str]) -> dict[str, KnownNode]:
        """What the projections know of these nodes (absent: never seen)."""
        wanted = sorted(set(names))
        async with translate_errors("read nodes"):
            rows: list[NodeRow] = await fetch_rows(
                self._tx.driver, CODECS[NodeRow], "WHERE x.node = ANY($1::text[])", wanted
            )
            records = await self._tx.driver.fetch(_PRESENCE, wanted)
        presence: dict[str, dict[str, Presence]] = {}
        for r in records:
            presence.setdefault(r[0], {})[r[1]] = Presence(r[2], r[3], r[4] or "inventory")
        return {
            row.node: KnownNode(
                name=row.node,
                labels=dict(row.labels),
                taints=tuple(row.taints),
                eligible=row.eligible,
                comment=row.comment,
                seen_at=row.seen_at,
                gone=row.gone_at is not None,
                presence=presence.get(row.node, {}),
            )
            for row in rows
        }

    async def plan_input(self) -> PlanInput:
        """The planning snapshot: targets in display order, eligible nodes, pairs."""
        db = self._tx.driver
        async with translate_errors("read the prepull state"):
            targets = tuple(PrepullTarget(*r) for r in await db.fetch(_TARGETS))
            nodes = tuple(r[0] for r in await db.fetch(_ELIGIBLE))
            digests = sorted({t.digest for t in targets})
            records = await db.fetch(_PAIRS, digests)
        pairs = {(r[0], r[1]): PairState(*r) for r in records}
        return PlanInput(targets, nodes, pairs)

    async def parked_pairs(self, nodes: Iterable[str]) -> list[PairState]:
        """The parked (node, digest) pairs of these nodes."""
        async with translate_errors("read parked prepulls"):
            records = await self._tx.driver.fetch(_PARKED, sorted(set(nodes)))
        return [PairState(*r) for r in records]

    async def append(self, facts: Sequence[Fact]) -> dict[str, int]:
        """Append facts (a known key adds nothing); returns new events by type."""
        if not facts:
            return {}
        items = [NewEvent(f.event, f.key, f.causation) for f in facts]
        result = await self._tx.append(items)
        if not result.positions:
            return {}
        async with translate_errors("count appended events"):
            rows = await self._tx.driver.fetch(_TYPES, list(result.positions))
        return {r[0]: int(r[1]) for r in rows}

    async def write_outbox(self, messages: Sequence[Outgoing]) -> int:
        """Store outbound messages in this transaction; a known id adds nothing."""
        return await write_outbox(self._tx.driver, messages)

    async def images_states(self) -> dict[RepositoryKey, ImagesState]:
        """What inventories and pod completions can change of what the spawner sees of
        every repository: the menu as shown (prepull gating), not the dropdown."""
        return await images_states(self._tx, dropdown=False)

    async def log_head(self) -> int:
        """The position of the last event, this unit's appends included."""
        return await log_head(self._tx)


class WorkStore:
    """Opens units of work on the event log."""

    def __init__(self, log: EventLog) -> None:
        self._log = log

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[WorkUnit]:
        """A unit of work; commits when the block ends, rolls back on an error."""
        async with self._log.transaction() as tx:
            yield WorkUnit(tx)


class LedgerStatus:
    """Cheap reads for ``/healthz``, ``/metrics`` and the refresh schedule."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def reachable(self) -> bool:
        """Whether the database answers a trivial query."""
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def prepull_counts(self) -> dict[str, int]:
        """Pairs by prepull state among images not present (in flight, failed, parked)."""
        sql = text(
            "SELECT prepull_state, count(*) FROM ledger.node_images"
            " WHERE prepull_state IN ('requested', 'failed', 'parked')"
            " AND present IS NOT TRUE GROUP BY prepull_state"
        )
        async with translate_errors("count prepulls"), self._engine.connect() as conn:
            rows = (await conn.execute(sql)).all()
        counts = {"requested": 0, "failed": 0, "parked": 0}
        counts.update({str(r[0]): int(r[1]) for r in rows})
        return counts

    async def refreshed_within(self, repository: Repository, window: timedelta) -> bool:
        """Whether a refresh of the repository started within ``window`` of now."""
        sql = text(
            "SELECT 1 FROM ledger.refreshes WHERE registry = :registry"
            " AND repository = :repository AND started_at > now() - :window LIMIT 1"
        )
        params = {
            "registry": repository.registry,
            "repository": repository.repository,
            "window": window,
        }
        async with translate_errors("read refreshes"), self._engine.connect() as conn:
            return (await conn.execute(sql, params)).first() is not None
