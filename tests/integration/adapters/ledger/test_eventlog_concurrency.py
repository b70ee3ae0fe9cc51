"""Concurrent appenders: gap-free positions in commit order; a tailing reader never skips."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.support.events import T0
from worker.adapters.ledger.database import make_engine
from worker.adapters.ledger.eventlog import EventLog, NewEvent
from worker.domain.events import CachedImage, NodeInventoryObserved, PrepullSucceeded

WRITERS = 6
BATCHES = 12
SIZE = 20


def writer_batch(writer: int, batch: int) -> list[NewEvent]:
    out = []
    for i in range(SIZE):
        at = T0 + timedelta(seconds=batch * SIZE + i)
        node = f"node-{writer}-{i % 3}"
        event = (
            PrepullSucceeded(registry="r.test", repository="p", digest=f"sha256:{batch}",
                             node=node, occurred_at=at)
            if i % 2
            else NodeInventoryObserved(node=node, appeared=(CachedImage(f"sha256:{i}"),),
                                       image_count=1, occurred_at=at)
        )  # fmt: skip
        out.append(NewEvent(event, idempotency_key=f"w{writer}-b{batch}-{i}"))
    return out


async def test_concurrent_appenders_and_a_tailing_reader(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(WRITERS + 1)]
    done = asyncio.Event()
    seen: list[int] = []
    violations: list[str] = []

    async def write(writer: int) -> list[int]:
        log = EventLog(engines[writer])
        positions: list[int] = []
        for batch in range(BATCHES):
            result = await log.append(writer_batch(writer, batch))
            assert list(result.positions) == list(
                range(result.positions[0], result.positions[0] + SIZE)
            ), "one append's positions are contiguous"
            positions.extend(result.positions)
            await asyncio.sleep(0)
        return positions

    async def tail() -> None:
        log = EventLog(engines[WRITERS])
        last = 0
        while True:
            finished = done.is_set()
            for recorded in await log.read(after=last, limit=10_000):
                if recorded.position != last + 1:
                    violations.append(f"after {last} came {recorded.position}")
                last = recorded.position
                seen.append(last)
            if finished:
                return

    try:
        reader = asyncio.create_task(tail())
        results = await asyncio.gather(*(write(w) for w in range(WRITERS)))
        done.set()
        await reader
    finally:
        for engine in engines:
            await engine.dispose()
    total = WRITERS * BATCHES * SIZE
    assert sorted(p for r in results for p in r) == list(range(1, total + 1))
    assert violations == []
    assert seen == list(range(1, total + 1))
