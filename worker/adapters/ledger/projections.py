"""Projection rows in PostgreSQL: fold a batch of new events into the ``ledger`` tables.

Repository events (tags, refreshes, policies: few) are folded by the domain's own rules
(``worker.domain.ledger.changes``) over a ``WorkingSet`` of the rows they touch, loaded and
written back here. Node and prepull events (most of the log) are folded set-based inside
PostgreSQL by ``worker.adapters.ledger.nodefold``, which implements the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from worker.adapters.ledger.rows import CODECS, TableCodec
from worker.domain.events import Event
from worker.domain.ledger import NODE_EVENTS, changes, reads
from worker.domain.projection import (
    LedgerState,
    NodeImageRow,
    PolicyRow,
    R,
    RefreshRow,
    RepoKey,
    Row,
    StateView,
    TagInterval,
    TagKey,
    TagRow,
)

__all__ = [
    "Needs",
    "WorkingSet",
    "fetch_rows",
    "fold_repository_events",
    "is_node_event",
    "load_state",
    "needs_of",
]


class Needs:
    """The keys a batch of repository events reads: what to load before folding."""

    def __init__(self) -> None:
        self.tags: set[TagKey] = set()
        self.refreshes: set[str] = set()
        self.policies: set[RepoKey] = set()


def needs_of(events: Iterable[Event]) -> Needs:
    """Collect what folding the repository events among ``events`` will read."""
    needs = Needs()
    keys: dict[type[Any], set[Any]] = {
        TagRow: needs.tags,
        RefreshRow: needs.refreshes,
        PolicyRow: needs.policies,
    }
    for event in events:
        if (read := reads(event)) is not None:
            keys[read[0]].add(read[1])
    return needs


def is_node_event(event: Event) -> bool:
    """Whether an event is folded by the node fold (``worker.adapters.ledger.nodefold``)."""
    return isinstance(event, NODE_EVENTS)


class WorkingSet(StateView):
    """Rows loaded for a batch plus the batch's changes; the fold's ``StateView``.

    A key absent here is absent from the database: the loader fetched every key the batch
    reads (``needs_of``), and every row of the nodes whose eligibility may change.
    """

    def __init__(self, *, complete: bool = False) -> None:
        self.complete = complete
        """True when the database holds no row that is not here (a rebuild from empty)."""
        self.rows: dict[type[Any], dict[Any, Any]] = {cls: {} for cls in CODECS}
        self.by_node: dict[str, set[str]] = {}
        self.dirty: dict[type[Any], set[Any]] = {cls: set() for cls in CODECS}
        self.stored: dict[type[Any], set[Any]] = {cls: set() for cls in CODECS}

    def table(self, cls: type[R]) -> dict[Any, R]:
        return self.rows[cls]

    def digests_on(self, node: str) -> Iterable[str]:
        return self.by_node.get(node, ())

    def add(self, row: Row, *, dirty: bool = False) -> None:
        """Keep a row: loaded from the database, or changed by the fold when ``dirty``."""
        cls = type(row)
        self.rows[cls][row.key] = row
        (self.dirty if dirty else self.stored)[cls].add(row.key)
        if isinstance(row, NodeImageRow):
            self.by_node.setdefault(row.node, set()).add(row.digest)

    def size(self) -> int:
        """How many rows are held."""
        return sum(len(rows) for rows in self.rows.values())

    def fold(self, events: Iterable[Event]) -> None:
        """Fold events into the rows, marking what changed."""
        for event in events:
            for row in changes(self, event):
                self.add(row, dirty=True)


async def fetch_rows(db: Any, codec: TableCodec, where: str, *args: Any) -> list[Any]:
    """Rows of a codec's table (alias ``x``) matching ``where``."""
    records = await db.fetch(f"SELECT {codec.select} FROM {codec.table} x {where}", *args)
    return [codec.decode(r) for r in records]


async def load(db: Any, ws: WorkingSet, needs: Needs) -> None:
    """Load into ``ws`` every row ``needs`` names that is not loaded yet."""
    if ws.complete:
        return
    if needs.tags:
        await _load_tags(db, ws, needs.tags)
    if needs.refreshes:
        ids = [k for k in needs.refreshes if k not in ws.rows[RefreshRow]]
        for row in await fetch_rows(db, CODECS[RefreshRow], "WHERE x.refresh_id = ANY($1)", ids):
            ws.add(row)
    if needs.policies:
        keys = [k for k in needs.policies if k not in ws.rows[PolicyRow]]
        join = (
            "JOIN unnest($1::text[], $2::text[]) AS k(r, p)"
            " ON k.r = x.registry AND k.p = x.repository"
        )
        columns = [[k[0] for k in keys], [k[1] for k in keys]]
        for row in await fetch_rows(db, CODECS[PolicyRow], join, *columns):
            ws.add(row)


async def _load_tags(db: Any, ws: WorkingSet, keys: set[TagKey]) -> None:
    wanted = [k for k in keys if k not in ws.rows[TagRow]]
    if not wanted:
        return
    columns = [list(c) for c in zip(*wanted, strict=True)]
    join = "JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(r, p, t)"
    match = "k.r = x.registry AND k.p = x.repository AND k.t = x.tag"
    tags = CODECS[TagRow]
    for row in await fetch_rows(db, tags, f"{join} ON {match}", *columns):
        ws.add(row)
    history = CODECS[TagInterval]
    current = f"{join} ON {match} JOIN {tags.table} g"
    same = "g.registry = x.registry AND g.repository = x.repository AND g.tag = x.tag"
    for row in await fetch_rows(
        db, history, f"{current} ON {same} AND x.seq = g.history_seq", *columns
    ):
        ws.add(row)


COPY_THRESHOLD = 32
"""New rows from this many on are written with COPY (faster than INSERT for a batch)."""


async def write(db: Any, ws: WorkingSet) -> int:
    """Write every changed row: COPY rows the table lacks, upsert the others."""
    written = 0
    for cls, keys in ws.dirty.items():
        if not keys:
            continue
        codec, table, stored = CODECS[cls], ws.rows[cls], ws.stored[cls]
        new = [table[k] for k in keys if k not in stored]
        if codec.bulk and len(new) >= COPY_THRESHOLD:
            await codec.copy(db, new)
            old = [table[k] for k in keys if k in stored]
        else:
            old = [table[k] for k in keys]
        if old:
            await codec.upsert(db, old)
        written += len(keys)
        stored.update(keys)
        keys.clear()
    return written


async def fold_repository_events(db: Any, events: Sequence[Event]) -> int:
    """Fold the repository events among ``events`` (new in the log) into their tables.

    Node and prepull events are skipped: the statement that appends them folds them
    (``worker.adapters.ledger.nodefold``). Returns how many rows were written.
    """
    repository_events = [e for e in events if not is_node_event(e)]
    if not repository_events:
        return 0
    ws = WorkingSet()
    await load(db, ws, needs_of(repository_events))
    ws.fold(repository_events)
    return await write(db, ws)


async def load_state(db: Any) -> LedgerState:
    """Every projection row as a ``LedgerState`` (for checks and small databases)."""
    state = LedgerState()
    for codec in CODECS.values():
        for row in await fetch_rows(db, codec, ""):
            state.put(row)
    return state
