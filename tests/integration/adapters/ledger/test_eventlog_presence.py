"""Images on nodes in the database: newest observation wins (difference 11), truncated
lists never mark an image gone (difference 10), and the history twin node_images_at."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.database import raw_url
from tests.support.events import T0
from worker.adapters.ledger.eventlog import EventLog, NewEvent
from worker.adapters.ledger.projections import load_state
from worker.adapters.ledger.rebuild import rebuild
from worker.domain.events import (
    CachedImage,
    Event,
    NodeInventoryObserved,
    NodeSeen,
    PrepullSucceeded,
)

A, B, C = (f"sha256:{c * 64}" for c in "abc")
PRESENCE = text("SELECT digest, eligible_nodes FROM ledger.image_presence ORDER BY digest")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def inventory(minutes: int, appeared: tuple[str, ...] = (), disappeared: tuple[str, ...] = (),
              truncated: bool = False) -> NodeInventoryObserved:  # fmt: skip
    return NodeInventoryObserved(
        node="n1",
        appeared=tuple(CachedImage(d, 7) for d in appeared),
        disappeared=disappeared,
        truncated=truncated,
        image_count=50 if truncated else len(appeared),
        occurred_at=at(minutes),
    )


FACTS: list[Event] = [
    inventory(1, appeared=(A,)),
    inventory(3, disappeared=(A,)),
    inventory(2, appeared=(A, B)),
    PrepullSucceeded(registry="r", repository="p", digest=B, node="n1", occurred_at=at(4)),
    inventory(0, disappeared=(B,)),
    inventory(5, appeared=(C,), disappeared=(B,), truncated=True),
]


async def present(url: str) -> set[tuple[str, bool, datetime, str]]:
    db = await asyncpg.connect(raw_url(url))
    try:
        rows = await db.fetch(
            "SELECT digest, present, observed_at, source FROM dashboard.node_images"
            " WHERE node = 'n1'"
        )
    finally:
        await db.close()
    return {(r[0], r[1], r[2], r[3]) for r in rows}


async def test_newest_observation_wins_whatever_the_arrival_order(
    event_log: EventLog, database_url: str
) -> None:
    """DOMAIN.md difference 11, in the database, over every order of six facts."""
    expected = {(A, False, at(3), "inventory"), (B, True, at(4), "prepull"),
                (C, True, at(5), "inventory")}  # fmt: skip
    orders = list(itertools.permutations(range(len(FACTS))))[::37]
    await event_log.append([NodeSeen(node="n1", eligible=True, occurred_at=T0)])
    for run, order in enumerate(orders):
        db = await asyncpg.connect(raw_url(database_url))
        await db.execute("DELETE FROM ledger.node_images; DELETE FROM ledger.image_presence")
        await db.close()
        for i in order:
            await event_log.append([NewEvent(FACTS[i], f"run{run}-{i}")])
        assert await present(database_url) == expected, order


async def test_a_truncated_list_never_marks_an_image_gone(
    event_log: EventLog, database_url: str
) -> None:
    """DOMAIN.md difference 10: a list of nodeStatusMaxImages entries proves presence only."""
    await event_log.append([
        NodeSeen(node="n1", eligible=True, occurred_at=T0),
        inventory(1, appeared=(A, B)),
        inventory(2, disappeared=(A, B), truncated=True),
    ])  # fmt: skip
    assert {d for d, p, _, _ in await present(database_url) if p} == {A, B}
    db = await asyncpg.connect(raw_url(database_url))
    try:
        node = await db.fetchrow("SELECT * FROM dashboard.nodes WHERE node = 'n1'")
        assert (node["truncated"], node["last_inventory_at"], node["last_complete_at"]) == (
            True, at(2), at(1))  # fmt: skip
        status = await db.fetch("SELECT digest, eligible_nodes FROM ledger.image_presence")
        assert {(r[0], r[1]) for r in status} == {(A, 1), (B, 1)}
    finally:
        await db.close()
    await event_log.append([inventory(3, disappeared=(A,))])
    assert {d for d, p, _, _ in await present(database_url) if p} == {B}


async def test_node_images_at_answers_from_the_log(event_log: EventLog, database_url: str) -> None:
    await event_log.append(FACTS)
    db = await asyncpg.connect(raw_url(database_url))
    try:

        async def held(minutes: int) -> set[str]:
            sql = "SELECT digest FROM dashboard.node_images_at('n1', $1)"
            return {r[0] for r in await db.fetch(sql, at(minutes))}

        assert await held(0) == set()
        assert await held(1) == {A}
        assert await held(2) == {A, B}
        assert await held(3) == {B}
        assert await held(5) == {B, C}
    finally:
        await db.close()


async def test_an_image_that_leaves_every_node_leaves_image_presence(
    event_log: EventLog, engine: AsyncEngine
) -> None:
    """A count that falls to zero is no row, live as after a rebuild (which counts from the
    rows and writes none for an image no eligible node holds)."""
    await event_log.append(
        [
            NodeSeen(node="n1", eligible=True, occurred_at=T0),
            NodeSeen(node="n2", eligible=True, occurred_at=T0),
            inventory(1, appeared=(A, B)),
            NodeInventoryObserved(node="n2", appeared=(CachedImage(B, 7),), occurred_at=at(1)),
        ]
    )
    await event_log.append([inventory(2, appeared=(B,), disappeared=(A,))])
    async with engine.connect() as connection:
        rows = (await connection.execute(PRESENCE)).all()
        assert rows == [(B, 2)]
        before = await load_state((await connection.get_raw_connection()).driver_connection)
    await rebuild(engine)
    async with engine.connect() as connection:
        assert (await connection.execute(PRESENCE)).all() == [(B, 2)]
        after = await load_state((await connection.get_raw_connection()).driver_connection)
    assert after == before
