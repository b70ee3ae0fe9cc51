"""Rebuild parity: live projections == projections after rebuild == the pure-Python fold.

Random event streams over a small world (few tags, digests and nodes; few instants, so
observation times tie and arrive out of order) are appended in random batches, some of
them twice; then the projections are rebuilt from the log in random chunks. A few events
are dated far ahead (as a log written before the edge refused such times may hold them):
both folds count them at their recording plus the skew (``as_folded``). Set
``PARITY_EXAMPLES`` (default 30) and ``PARITY_SIZE`` (events per stream, default 50) for a
deeper search.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.database import raw_url
from tests.support.events import NODES, T0, TAGS, world_events
from worker.adapters.ledger.database import make_engine
from worker.adapters.ledger.eventlog import EventLog
from worker.adapters.ledger.projections import load_state
from worker.adapters.ledger.rebuild import rebuild
from worker.adapters.ledger.schema import PROJECTION_TABLES
from worker.converter import converter
from worker.domain.events import Event, NodeInventoryObserved, PrepullSucceeded
from worker.domain.ledger import as_folded, fold
from worker.domain.projection import LedgerState

FAR_AHEAD = datetime(9999, 1, 1, tzinfo=UTC)

TABLES = ("tags", "tag_history", "nodes", "node_images", "presence_counts", "refreshes", "policies")


def normalized(state: LedgerState) -> dict[str, dict[Any, Any]]:
    """The rows of each table; a presence counter of 0 is the same as no counter."""
    out = {name: dict(getattr(state, name)) for name in TABLES}
    out["presence_counts"] = {k: r for k, r in out["presence_counts"].items() if r.eligible_nodes}
    return out


def first_occurrences(events: list[Event]) -> list[Event]:
    """Events as the log keeps them: an event equal to an earlier one adds nothing."""
    seen: set[str] = set()
    out = []
    for event in events:
        key = json.dumps(converter.unstructure(event, Event), sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(event)
    return out


async def projections(db: asyncpg.Connection) -> dict[str, dict[Any, Any]]:
    return normalized(await load_state(db))


def node_images_at(events: list[Event], node: str, at: datetime) -> set[str]:
    """The oracle: fold only the observations made at or before ``at``."""
    observed = [
        e for e in events
        if isinstance(e, NodeInventoryObserved | PrepullSucceeded) and e.occurred_at <= at
    ]  # fmt: skip
    state = fold(observed)
    return {d for (n, d), row in state.node_images.items() if n == node and row.present}


def tag_digest_at(state: LedgerState, tag: str, at: datetime) -> set[tuple[str, str | None]]:
    """The oracle of ``dashboard.tag_digest_at``: the latest interval begun by ``at``."""
    latest: dict[tuple[str, str], Any] = {}
    for interval in state.tag_history.values():
        if interval.tag != tag or interval.valid_from > at:
            continue
        key = (interval.registry, interval.repository)
        best = latest.get(key)
        if best is None or (interval.valid_from, interval.seq) > (best.valid_from, best.seq):
            latest[key] = interval
    return {
        (i.repository, i.digest)
        for i in latest.values()
        if i.valid_until is None or i.valid_until > at
    }


def dated_far_ahead(events: list[Event], far: list[int]) -> list[Event]:
    """The events, those at the indexes ``far`` dated far ahead."""
    moved = set(far)
    return [
        attrs.evolve(e, occurred_at=FAR_AHEAD) if i in moved else e for i, e in enumerate(events)
    ]


async def scenario(url: str, events: list[Event], cuts: list[int], again: list[int],
                   chunk: int) -> None:  # fmt: skip
    engine = make_engine(url)
    db = await asyncpg.connect(raw_url(url))
    try:
        tables = ", ".join(f"ledger.{t.name}" for t in PROJECTION_TABLES)
        await db.execute(f"TRUNCATE ledger.events, {tables}")
        log = EventLog(engine)
        bounds = sorted({0, len(events), *(c for c in cuts if c <= len(events))})
        batches = [events[a:b] for a, b in itertools.pairwise(bounds)]
        for i, batch in enumerate(batches):
            await log.append(batch)
            if i in again:
                assert (await log.append(batch)).appended == 0
        records = await log.read(0, 10**6)
        logged = [r.event for r in records]
        assert logged == first_occurrences(events)
        expected = normalized(fold(as_folded(r.event, r.recorded_at) for r in records))
        live = await projections(db)
        assert live == expected
        await rebuild(engine, chunk=chunk)
        assert await projections(db) == live
        await _time_travel(db, logged)
    finally:
        await db.close()
        await engine.dispose()


async def _time_travel(db: asyncpg.Connection, logged: list[Event]) -> None:
    state = fold(logged)
    for minutes in (0, 3, 6, 9, 12):
        at = T0 + timedelta(minutes=minutes)
        for node in NODES[:2]:
            rows = await db.fetch("SELECT digest FROM dashboard.node_images_at($1, $2)", node, at)
            assert {r[0] for r in rows} == node_images_at(logged, node, at), (node, at)
        for tag in TAGS[:3]:
            sql = "SELECT repository, digest FROM dashboard.tag_digest_at($1, $2)"
            rows = await db.fetch(sql, tag, at)
            assert {(r[0], r[1]) for r in rows} == tag_digest_at(state, tag, at), (tag, at)


@settings(
    max_examples=int(os.environ.get("PARITY_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=world_events(int(os.environ.get("PARITY_SIZE", "50"))),
    far=st.lists(st.integers(0, 50), max_size=3),
    cuts=st.lists(st.integers(0, 50), max_size=5),
    again=st.lists(st.integers(0, 5), max_size=2),
    chunk=st.integers(1, 60),
)
def test_live_equals_rebuild_equals_fold(
    database_url: str,
    events: list[Event],
    far: list[int],
    cuts: list[int],
    again: list[int],
    chunk: int,
) -> None:
    events = dated_far_ahead(events, far)
    asyncio.run(scenario(database_url, events, cuts, again, chunk))
