"""Projection rows in PostgreSQL: fold a batch of new events into the ``ledger`` tables.

Repository events (tags, refreshes, policies: few) are folded by the domain's own rules
(``worker.domain.ledger.changes``) over a ``WorkingSet`` of the rows they touch, loaded and
written back here through the table codecs (``worker.adapters.ledger.rows``). Node and
prepull events (most of the log) are folded set-based inside PostgreSQL by
``worker.adapters.ledger.nodefold``, which implements the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from worker.adapters.ledger.rows import CODECS, TableCodec
from worker.adapters.ledger.statements import Sql, Statement, compose
from worker.domain.events import Event
from worker.domain.ledger import NODE_EVENTS, changes, reads
from worker.domain.projection import (
    LedgerState,
    NodeImageRow,
    R,
    Row,
    StateView,
    TagInterval,
    TagRow,
)

__all__ = [
    "WorkingSet",
    "fetch_keyed",
    "fetch_rows",
    "fold_repository_events",
    "is_node_event",
    "load_state",
]


def is_node_event(event: Event) -> bool:
    """Whether an event is folded by the node fold (``worker.adapters.ledger.nodefold``)."""
    return isinstance(event, NODE_EVENTS)


class WorkingSet(StateView):
    """Rows loaded for a batch plus the batch's changes; the fold's ``StateView``.

    A key absent here is absent from the database: the loader fetched every key the batch
    reads (``worker.domain.ledger.reads``).
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


@lru_cache(maxsize=256)
def _select(codec: TableCodec, where: str) -> Statement:
    template = Sql("SELECT {{columns}} FROM {{table}} x {{where}}")
    return Statement(compose(template, columns=codec.select, table=codec.name, where=Sql(where)))


async def fetch_rows(db: Any, codec: TableCodec, where: str = "", **params: Any) -> list[Any]:
    """Rows of a codec's table (alias ``x``) matching ``where`` (named parameters)."""
    records = await _select(codec, where).fetch(db, **params)
    return [codec.decode(r) for r in records]


async def fetch_keyed(db: Any, codec: TableCodec, keys: Sequence[Any]) -> list[Any]:
    """The rows of a codec's table with these primary keys (tuples, or values of a
    one-column key)."""
    if not keys:
        return []
    columns = list(zip(*keys, strict=True)) if len(codec.key) > 1 else [keys]
    arrays = {name: list(values) for name, values in zip(codec.key, columns, strict=True)}
    return [codec.decode(r) for r in await codec.select_keys().fetch(db, **arrays)]


async def load(db: Any, ws: WorkingSet, events: Iterable[Event]) -> None:
    """Load into ``ws`` every row folding ``events`` reads that is not loaded yet."""
    if ws.complete:
        return
    needs: dict[type[Any], set[Any]] = {}
    for event in events:
        if (read := reads(event)) is not None:
            needs.setdefault(read[0], set()).add(read[1])
    for cls, keys in needs.items():
        loaded = await fetch_keyed(db, CODECS[cls], [k for k in keys if k not in ws.rows[cls]])
        for row in loaded:
            ws.add(row)
        if cls is TagRow:
            current = [(*row.key, row.history_seq) for row in loaded]
            for interval in await fetch_keyed(db, CODECS[TagInterval], current):
                ws.add(interval)


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
    await load(db, ws, repository_events)
    ws.fold(repository_events)
    return await write(db, ws)


async def load_state(db: Any) -> LedgerState:
    """Every projection row as a ``LedgerState`` (for checks and small databases)."""
    state = LedgerState()
    for codec in CODECS.values():
        for row in await fetch_rows(db, codec):
            state.put(row)
    return state
