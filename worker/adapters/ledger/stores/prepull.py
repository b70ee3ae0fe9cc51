"""The worker's view of the ledger: one unit of work per batch, reads for decisions and planning.

``WorkStore.transaction()`` opens a ``LedgerTransaction`` (the append lock is held, so what
a unit reads cannot change before it commits) and yields a ``WorkUnit`` that speaks domain
types: known nodes, the planning snapshot, facts to append, messages for the outbox.
``LedgerStatus`` answers the health check and the refresh schedule.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger.database import LedgerError, translate_errors
from worker.adapters.ledger.derived import gating, log_head, offers
from worker.adapters.ledger.eventlog import EventLog, LedgerTransaction, NewEvent
from worker.adapters.ledger.messages import record_messages, recorded_bodies
from worker.adapters.ledger.migrate import current_revision, revisions
from worker.adapters.ledger.outbox import write_outbox
from worker.adapters.ledger.projections import fetch_keyed
from worker.adapters.ledger.rows import CODECS
from worker.adapters.ledger.statements import Statement
from worker.adapters.ledger.stores.planning import CoverageCache
from worker.adapters.ledger.stores.units import UnitStore
from worker.domain.changes import Gating, Offer, RepositoryKey
from worker.domain.images import Repository
from worker.domain.inventory import Presence
from worker.domain.messages import Delivery, Outgoing
from worker.domain.node_observation import KnownNode
from worker.domain.planning import request_candidates
from worker.domain.prepull import (
    Fact,
    PairState,
    PlanInput,
    PrepullSettings,
    PrepullTarget,
    busy_nodes,
    complete_message_id,
    pull_order,
    request_window,
)
from worker.domain.projection import NodeRow

__all__ = ["LedgerStatus", "WorkStore", "WorkUnit"]

log = structlog.get_logger(__name__)

_TARGETS = Statement(
    "SELECT registry, repository, tag, digest, position FROM ledger.prepull_targets"
    " WHERE pull AND digest IS NOT NULL ORDER BY position, tag"
)
_ACTIVE = Statement(
    "SELECT node, digest, coalesce(present, false), prepull_state, prepull_requests,"
    " prepull_failures, prepull_deadline, prepull_finished_at, registry, repository, tag,"
    " prepull_reason"
    " FROM ledger.node_images"
    " WHERE prepull_state = 'requested'"
    " OR (prepull_state = 'failed' AND digest = ANY(CAST(:digests AS text[])))"
)
_ANNOUNCED = Statement(
    "SELECT message_id FROM ledger.outbox WHERE message_id = ANY(CAST(:message_ids AS text[]))"
)
# The pairs a plan may request (``request_candidates``), with what their rows hold, in order.
_CHOSEN = Statement(
    "SELECT k.node, k.digest, false, ni.prepull_state, coalesce(ni.prepull_requests, 0),"
    " coalesce(ni.prepull_failures, 0), ni.prepull_deadline, ni.prepull_finished_at,"
    " ni.registry, ni.repository, ni.tag, ni.prepull_reason"
    " FROM unnest(CAST(:nodes AS text[]), CAST(:digests AS text[]))"
    " WITH ORDINALITY AS k(node, digest, ord)"
    " LEFT JOIN ledger.node_images ni ON ni.node = k.node AND ni.digest = k.digest"
    " ORDER BY k.ord"
)
_PRESENCE = Statement(
    "SELECT node, digest, present, observed_at, source FROM ledger.node_images"
    " WHERE node = ANY(CAST(:nodes AS text[])) AND present IS NOT NULL"
)
_PARKED = Statement(
    "SELECT node, digest, coalesce(present, false), prepull_state, prepull_requests,"
    " prepull_failures, prepull_deadline, prepull_finished_at, registry, repository, tag,"
    " prepull_reason"
    " FROM ledger.node_images"
    " WHERE node = ANY(CAST(:nodes AS text[])) AND prepull_state = 'parked'"
)
_TYPES = Statement(
    "SELECT type, count(*) FROM ledger.events"
    " WHERE position = ANY(CAST(:positions AS bigint[])) GROUP BY type"
)


class WorkUnit:
    """One batch's transaction, in domain terms."""

    def __init__(self, tx: LedgerTransaction, coverage: CoverageCache | None = None) -> None:
        self._tx = tx
        self._coverage = coverage or CoverageCache()

    async def known_nodes(self, names: Iterable[str]) -> dict[str, KnownNode]:
        """What the projections know of these nodes (absent: never seen)."""
        wanted = sorted(set(names))
        async with translate_errors("read nodes"):
            rows: list[NodeRow] = await fetch_keyed(self._tx.driver, CODECS[NodeRow], wanted)
            records = await _PRESENCE.fetch(self._tx.driver, nodes=wanted)
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
                complete_at=row.last_complete_at,
            )
            for row in rows
        }

    async def plan_input(self, settings: PrepullSettings, now: datetime) -> PlanInput:
        """The planning snapshot: targets in display order, eligible nodes, the pairs in
        flight or failed, the pairs the plan may request, and the complete digests. The
        eligible nodes and who lacks each target come from the coverage cache, brought up
        to date with what the log gained since the last plan."""
        db = self._tx.driver
        async with translate_errors("read the prepull state"):
            targets = tuple(PrepullTarget(*r) for r in await _TARGETS.fetch(db))
            order = pull_order(targets)
            digests = [t.digest for t in order]
            active = [PairState(*r) for r in await _ACTIVE.fetch(db, digests=digests)]
            coverage = await self._coverage.sync(db, digests, await log_head(self._tx))
            held = coverage.held_everywhere()
            busy = busy_nodes(active, settings, now)
            per_node, total = request_window(settings)
            wanted = [d for d in digests if d not in held]
            chosen = request_candidates(coverage, wanted, busy, per_node, total)
            records = (
                await _CHOSEN.fetch(
                    db, nodes=[n for n, _ in chosen], digests=[d for _, d in chosen]
                )
                if chosen
                else []
            )
            ids = [complete_message_id(t) for t in order if t.digest in held]
            announced = (
                {r[0] for r in await _ANNOUNCED.fetch(db, message_ids=ids)} if ids else set()
            )
        pairs = {(p.node, p.digest): p for p in (*active, *(PairState(*r) for r in records))}
        return PlanInput(targets, coverage.eligible_nodes, pairs, held, frozenset(announced))

    async def parked_pairs(self, nodes: Iterable[str]) -> list[PairState]:
        """The parked (node, digest) pairs of these nodes."""
        async with translate_errors("read parked prepulls"):
            records = await _PARKED.fetch(self._tx.driver, nodes=sorted(set(nodes)))
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
            rows = await _TYPES.fetch(self._tx.driver, positions=list(result.positions))
        return {r[0]: int(r[1]) for r in rows}

    async def recorded_bodies(self, message_ids: Iterable[str]) -> dict[str, str]:
        """Message id -> body hash, for the ids already folded."""
        return await recorded_bodies(self._tx.driver, message_ids)

    async def record_messages(self, deliveries: Sequence[Delivery]) -> None:
        """Record these deliveries' ids and body hashes in this transaction."""
        rows = [(d.message_id, d.body_sha256 or "", d.routing_key) for d in deliveries]
        await record_messages(self._tx.driver, rows)

    async def write_outbox(self, messages: Sequence[Outgoing]) -> int:
        """Store outbound messages in this transaction; a known id adds nothing."""
        return await write_outbox(self._tx.driver, messages)

    async def offers(self) -> dict[RepositoryKey, Offer]:
        """What the last refresh of each repository offers (menu entries, prepull set)."""
        return await offers(self._tx)

    async def gating(self, digests: Iterable[str]) -> Gating:
        """The eligible nodes and how many of them hold each of ``digests``, now."""
        return await gating(self._tx, digests)

    async def log_head(self) -> int:
        """The position of the last event, this unit's appends included."""
        return await log_head(self._tx)


class WorkStore(UnitStore[WorkUnit]):
    """Opens units of work on the event log; its units share one coverage cache (the
    planner's matrix, kept up to date between batches)."""

    def __init__(self, log: EventLog) -> None:
        super().__init__(log)
        self._coverage = CoverageCache()

    @property
    def coverage(self) -> CoverageCache:
        """The units' coverage cache."""
        return self._coverage

    def _unit(self, tx: LedgerTransaction) -> WorkUnit:
        return WorkUnit(tx, self._coverage)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[WorkUnit]:
        """A unit of work; commits when the block ends, rolls back on an error (and then
        the coverage cache forgets what the unit read)."""
        try:
            async with super().transaction() as unit:
                yield unit
        except BaseException:
            self._coverage.settle(committed=False)
            raise
        self._coverage.settle(committed=True)


class LedgerStatus:
    """Cheap reads for ``/readyz``, ``/metrics`` and the refresh schedule."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._head: str | None = None

    async def schema_at_head(self) -> bool:
        """Whether the database's schema is at the newest migration this worker knows (read
        from the migration scripts once); False when either cannot be read."""
        try:
            if self._head is None:
                self._head = revisions()[-1]
            return await current_revision(self._engine) == self._head
        except LedgerError as exc:
            log.warning("cannot compare the schema with the migrations", error=str(exc))
            return False

    async def reachable(self) -> bool:
        """Whether the database answers a trivial query."""
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

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
