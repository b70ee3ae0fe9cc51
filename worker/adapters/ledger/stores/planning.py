"""The planner's coverage matrix, kept in the worker's memory and brought up to date from the
log inside each batch's transaction, so that planning costs what the batch changed, not
what the cluster holds.

A ``CoverageCache`` remembers the log position its `Coverage` reflects. In a unit of work
(the append lock held, so the log cannot move under it) ``sync`` reads the node and
prepull events appended since then, by any worker, and reads back from the projections only
the nodes and pairs they name: a node event re-reads the node (eligibility) and its rows
for the target digests, a prepull event its pair. It loads everything again when the target
digests change, when the projection tables were rewritten (``imageledger rebuild``
truncates them: their file node changes), when too many events arrived since the last
sync (reading them would cost more than a load), after ``reload_every`` (a bound on any
drift), after a unit of work that synced it rolled back, and when another unit synced it
and has not ended yet (``settle``).
"""

from __future__ import annotations

import time
from typing import Any

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.nodefold import NODE_EVENT_TYPES
from worker.adapters.ledger.statements import Statement
from worker.domain.planning import PENDING_STATES, Coverage, PairCoverage

__all__ = ["CoverageCache"]

_PENDING = sorted(PENDING_STATES)

_FILES = Statement(
    "SELECT relfilenode FROM pg_class"
    " WHERE oid IN (CAST('ledger.nodes' AS regclass), CAST('ledger.node_images' AS regclass))"
    " ORDER BY oid"
)
_ELIGIBLE = Statement("SELECT node FROM ledger.nodes WHERE eligible AND gone_at IS NULL")
_COVERED = Statement(
    "SELECT node, digest, coalesce(present, false), prepull_state FROM ledger.node_images"
    " WHERE digest = ANY(CAST(:digests AS text[]))"
    " AND (present OR prepull_state = ANY(CAST(:pending AS text[])))"
)
# The nodes and pairs the node fold's events since a position touched: a prepull event
# names its pair (node and digest), a node event (seen, inventory, gone) only its node.
_TOUCHED = Statement(
    "SELECT DISTINCT data->>'node', data->>'digest'"
    " FROM ledger.events WHERE position > :after AND position <= :head"
    " AND type = ANY(CAST(:types AS text[]))"
)
_NODES = Statement(
    "SELECT node, eligible AND gone_at IS NULL FROM ledger.nodes"
    " WHERE node = ANY(CAST(:nodes AS text[]))"
)
_PAIRS = Statement(
    "SELECT ni.node, ni.digest, coalesce(ni.present, false), ni.prepull_state"
    " FROM unnest(CAST(:nodes AS text[]), CAST(:digests AS text[])) AS k(node, digest)"
    " JOIN ledger.node_images ni ON ni.node = k.node AND ni.digest = k.digest"
)


class CoverageCache:
    """A `Coverage` and the log position it reflects (see the module docstring)."""

    def __init__(self, *, max_events: int = 50_000, reload_every: float = 300.0) -> None:
        self._max_events = max_events
        self._reload_every = reload_every
        self._coverage: Coverage | None = None
        self._position = 0
        self._files: tuple[Any, ...] = ()
        self._loaded_at = 0.0
        self._unsettled = False
        self.loads = 0
        """How many times the matrix was read whole (for tests and logs)."""

    def settle(self, *, committed: bool) -> None:
        """The unit of work that synced last has ended: what it read stays true if it
        committed; if it rolled back, its own appends never happened: drop everything."""
        self._unsettled = False
        if not committed:
            self._coverage = None

    async def sync(self, db: Any, digests: list[str], head: int) -> Coverage:
        """The coverage of ``digests`` at log position ``head``, read in ``db``'s
        transaction (which holds the append lock)."""
        async with translate_errors("read the prepull coverage"):
            files = tuple(r[0] for r in await _FILES.fetch(db))
            coverage = self._coverage
            if coverage is None or self._stale(coverage, digests, files, head):
                coverage = await self._load(db, digests)
                self._files, self._loaded_at = files, time.monotonic()
                self.loads += 1
            elif head > self._position:
                await _catch_up(db, coverage, self._position, head)
        self._coverage, self._position, self._unsettled = coverage, head, True
        return coverage

    def _stale(
        self, coverage: Coverage, digests: list[str], files: tuple[Any, ...], head: int
    ) -> bool:
        """Whether to read the matrix whole rather than catch up (module docstring)."""
        return (
            self._unsettled  # another unit synced and has not ended yet
            or coverage.digests != tuple(dict.fromkeys(digests))
            or files != self._files
            or head < self._position
            or head - self._position > self._max_events
            or time.monotonic() - self._loaded_at > self._reload_every
        )

    @staticmethod
    async def _load(db: Any, digests: list[str]) -> Coverage:
        coverage = Coverage(digests)
        rows: dict[str, dict[str, PairCoverage]] = {}
        for node, digest, present, state in await _COVERED.fetch(
            db, digests=list(coverage.digests), pending=_PENDING
        ):
            rows.setdefault(node, {})[digest] = PairCoverage(present, state)
        for (node,) in await _ELIGIBLE.fetch(db):
            coverage.put(node, True, rows.get(node, {}))
        return coverage


async def _catch_up(db: Any, coverage: Coverage, after: int, head: int) -> None:
    """Apply what the events in ``(after, head]`` changed: their nodes and pairs, re-read."""
    touched = await _TOUCHED.fetch(db, after=after, head=head, types=list(NODE_EVENT_TYPES))
    nodes = {node for node, digest in touched if digest is None}
    pairs = sorted(
        (node, digest)
        for node, digest in touched
        if digest is not None and node not in nodes and digest in coverage.digests
    )
    keys = [(n, d) for n in sorted(nodes) for d in coverage.digests] + pairs
    by_node: dict[str, dict[str, PairCoverage]] = {}
    if keys:
        records = await _PAIRS.fetch(db, nodes=[n for n, _ in keys], digests=[d for _, d in keys])
        for node, digest, present, state in records:
            by_node.setdefault(node, {})[digest] = PairCoverage(present, state)
    if nodes:
        eligible = dict(await _NODES.fetch(db, nodes=sorted(nodes)))
        for node in nodes:
            coverage.put(node, bool(eligible.get(node)), by_node.get(node, {}))
    for node, digest in pairs:
        coverage.put_pair(node, digest, by_node.get(node, {}).get(digest))
