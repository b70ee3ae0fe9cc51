"""Appending: dense positions, idempotency keys, causation, reading back by position."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.database import raw_url
from tests.support.events import T0
from worker.adapters.ledger.eventlog import EventLog, NewEvent
from worker.adapters.ledger.projections import load_state
from worker.domain.events import (
    CachedImage,
    Event,
    NodeInventoryObserved,
    NodeSeen,
    PrepullRequested,
    TagDiscovered,
)
from worker.domain.projection import LedgerState

REPO: dict[str, Any] = {"registry": "registry.test", "repository": "lsst/sciplat"}


def batch() -> list[Event]:
    return [
        TagDiscovered(tag="w_2077_43", digest="sha256:a", occurred_at=T0, **REPO),
        NodeSeen(node="n1", eligible=True, occurred_at=T0),
        NodeInventoryObserved(
            node="n1", appeared=(CachedImage("sha256:a", 10),), image_count=1, occurred_at=T0
        ),
        PrepullRequested(
            tag="w_2077_43", digest="sha256:b", node="n1", occurred_at=T0 + timedelta(1), **REPO
        ),
    ]


async def state(engine: AsyncEngine) -> LedgerState:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        return await load_state(raw.driver_connection)


async def log_rows(url: str) -> list[tuple[object, ...]]:
    db = await asyncpg.connect(raw_url(url))
    try:
        rows = await db.fetch(
            "SELECT position, stream, type, version, data::text, occurred_at, idempotency_key,"
            " causation FROM ledger.events ORDER BY position"
        )
    finally:
        await db.close()
    return [tuple(r) for r in rows]


async def test_the_same_batch_twice_is_one_append(
    event_log: EventLog, engine: AsyncEngine, database_url: str
) -> None:
    first = await event_log.append(batch())
    assert first.positions == (1, 2, 3, 4)
    once_log, once_state = await log_rows(database_url), await state(engine)
    again = await event_log.append(batch())
    assert (again.appended, again.duplicates) == (0, 4)
    assert await log_rows(database_url) == once_log
    assert await state(engine) == once_state


async def test_keys_decide_what_is_new(event_log: EventLog, database_url: str) -> None:
    events = batch()
    items = [
        NewEvent(e, idempotency_key=f"msg-1:{i}", causation="msg-1") for i, e in enumerate(events)
    ]
    result = await event_log.append([*items[:2], items[0], *items[2:]])
    assert (result.appended, result.duplicates) == (4, 1)
    partly = await event_log.append([items[3], NewEvent(events[3], "msg-2:0", "msg-2")])
    assert (partly.positions, partly.duplicates) == ((5,), 1)
    rows = await log_rows(database_url)
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    assert [r[6] for r in rows] == ["msg-1:0", "msg-1:1", "msg-1:2", "msg-1:3", "msg-2:0"]
    assert rows[4][7] == "msg-2"
    assert [r[1] for r in rows[:3]] == ["repo:registry.test/lsst/sciplat", "node:n1", "node:n1"]


async def test_read_returns_the_events_in_order(event_log: EventLog) -> None:
    await event_log.append(batch())
    await event_log.append([NewEvent(batch()[1], "again")])
    recorded = await event_log.read()
    assert [r.position for r in recorded] == [1, 2, 3, 4, 5]
    assert [r.event for r in recorded] == [*batch(), batch()[1]]
    assert recorded[0].recorded_at.tzinfo is not None
    assert [r.position for r in await event_log.read(after=3, limit=1)] == [4]
    assert await event_log.head() == 5


async def test_an_empty_append_does_nothing(event_log: EventLog) -> None:
    result = await event_log.append([])
    assert (result.positions, result.duplicates) == ((), 0)
    assert await event_log.head() == 0


async def test_reads_inside_the_transaction_see_its_own_appends(
    event_log: EventLog, engine: AsyncEngine
) -> None:
    async with event_log.transaction() as tx:
        await tx.append(batch())
        presence = await tx.node_presence("n1")
        assert presence["sha256:a"].present is True
        assert (await tx.node("n1")).eligible  # type: ignore[union-attr]
    assert (await state(engine)).nodes["n1"].eligible


async def test_a_connection_the_server_closed_is_replaced_at_checkout(
    event_log: EventLog, engine: AsyncEngine, database_url: str
) -> None:
    await event_log.append(batch())
    async with engine.connect() as connection:
        pooled = (await connection.get_raw_connection()).driver_connection
        assert pooled is not None
    admin = await asyncpg.connect(raw_url(database_url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pooled.get_server_pid())
    finally:
        await admin.close()
    for _ in range(100):
        if pooled.is_closed():
            break
        await asyncio.sleep(0.02)
    assert pooled.is_closed()

    later = TagDiscovered(tag="w_2077_44", digest="sha256:c", occurred_at=T0, **REPO)
    assert (await event_log.append([later])).appended == 1
