"""The outbox: written in the ledger transaction, relayed in order with confirms, at least once
with a stable message id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.rabbit import wait_until
from worker.adapters.broker.connection import Broker
from worker.adapters.ledger.eventlog import EventLog
from worker.adapters.ledger.outbox import (
    RELAY_LOCK_KEY,
    OutboxRelay,
    outbox_message_id,
    write_outbox,
)
from worker.converter import decode_outbound_message
from worker.domain.messages import (
    ImagesChangedMessage,
    Outgoing,
    PrepullCompleteMessage,
    PrepullRequestedMessage,
)
from worker.domain.references import DockerReference

T0 = datetime(2077, 1, 1, tzinfo=UTC)
DIGEST = "sha256:" + "ef" * 32
IMAGE = DockerReference.parse(f"registry.example.com/sqre/lab:w_2077_01@{DIGEST}")


def requests(count: int) -> list[Outgoing]:
    return [
        Outgoing(
            PrepullRequestedMessage(IMAGE, "w_2077_01", DIGEST, f"node-{i}", 1, T0),
            message_id=f"prepull:{i}",
        )
        for i in range(count)
    ]


@pytest.fixture
async def captured(
    broker: Broker, rabbit_connection: AbstractRobustConnection
) -> AsyncIterator[AbstractQueue]:
    """A queue of the test's own, bound to every outbound routing key."""
    channel = await rabbit_connection.channel()
    queue = await channel.declare_queue(exclusive=True)
    for key in ("prepull.requested", "prepull.complete", "images.changed"):
        await queue.bind(broker.topology.exchange, key)
    yield queue
    await channel.close()


async def take(queue: AbstractQueue, count: int) -> list[tuple[str | None, str, bytes]]:
    """(message id, routing key, body) of ``count`` messages, checking their properties."""
    out: list[tuple[str | None, str, bytes]] = []
    async with asyncio.timeout(10):
        while len(out) < count:
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.02)
                continue
            assert message.delivery_mode == 2
            assert message.content_type == "application/json"
            await message.ack()
            out.append((message.message_id, message.routing_key or "", message.body))
    assert await queue.get(fail=False) is None
    return out


async def failed_fold(event_log: EventLog) -> None:
    async with event_log.transaction() as tx:
        await write_outbox(tx.driver, requests(3))
        raise RuntimeError("fold failed")


async def test_write_outbox_inside_the_ledger_transaction(event_log: EventLog) -> None:
    complete = PrepullCompleteMessage(IMAGE, "w_2077_01", DIGEST, ("node-1", "node-2"), T0)
    changed = ImagesChangedMessage(
        "registry.example.com", "sqre/lab", ("w_2077_01",), (), (), (), (), (), (), None, T0
    )
    async with event_log.transaction() as tx:
        assert await write_outbox(tx.driver, [*requests(2), complete, changed, complete]) == 4
    async with event_log.transaction() as tx:  # a refold writes nothing new
        assert await write_outbox(tx.driver, [*requests(2), complete]) == 0
    with pytest.raises(RuntimeError, match="fold failed"):
        await failed_fold(event_log)  # a rolled-back fold invents nothing

    async with event_log.transaction() as tx:
        rows = await tx.driver.fetch(
            "SELECT message_id, routing_key FROM ledger.outbox ORDER BY id"
        )
    body = json.dumps(
        {"image": str(IMAGE), "tag": "w_2077_01", "digest": DIGEST,
         "nodes": ["node-1", "node-2"], "completed_at": "2077-01-01T00:00:00+00:00"},
        sort_keys=True, separators=(",", ":"),
    )  # fmt: skip
    assert [(r["message_id"], r["routing_key"]) for r in rows] == [
        ("prepull:0", "prepull.requested"),
        ("prepull:1", "prepull.requested"),
        (outbox_message_id("prepull.complete", body), "prepull.complete"),
        (rows[3]["message_id"], "images.changed"),
    ]


async def test_the_relay_publishes_in_order_with_confirms_and_marks_rows(
    event_log: EventLog, engine: AsyncEngine, broker: Broker, captured: AbstractQueue
) -> None:
    async with event_log.transaction() as tx:
        await write_outbox(tx.driver, requests(25))
    relay = OutboxRelay(engine, broker, batch_size=10)
    assert await relay.backlog() == 25
    assert [await relay.relay_once() for _ in range(4)] == [10, 10, 5, 0]

    got = await take(captured, 25)
    assert [message_id for message_id, _, _ in got] == [f"prepull:{i}" for i in range(25)]
    first = decode_outbound_message(got[0][1], got[0][2])
    assert first == requests(1)[0].message
    assert await relay.backlog() == 0
    async with engine.connect() as conn:
        unmarked = await conn.execute(
            text("SELECT count(*) FROM ledger.outbox WHERE published_at IS NULL")
        )
        assert unmarked.scalar_one() == 0


class Crash(BaseException):
    """The process dies (SIGKILL): nothing after this point runs."""


class FailingPublisher:
    """Publishes through ``broker`` ``allowed`` times, then fails with ``error``."""

    def __init__(self, broker: Broker, allowed: int, error: BaseException) -> None:
        self._broker, self._allowed, self._error = broker, allowed, error

    async def publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if self._allowed == 0:
            raise self._error
        self._allowed -= 1
        await self._broker.publish(routing_key, body, message_id=message_id, headers=headers)


async def test_after_a_crash_unmarked_rows_are_published_again_with_the_same_ids(
    event_log: EventLog, engine: AsyncEngine, broker: Broker, captured: AbstractQueue
) -> None:
    async with event_log.transaction() as tx:
        await write_outbox(tx.driver, requests(6))
    with pytest.raises(Crash):
        await OutboxRelay(engine, FailingPublisher(broker, 4, Crash())).relay_once()
    assert await OutboxRelay(engine, broker).relay_once() == 6

    ids = [message_id for message_id, _, _ in await take(captured, 10)]
    assert ids == [f"prepull:{i}" for i in range(4)] + [f"prepull:{i}" for i in range(6)]


async def test_a_publish_failure_marks_what_was_confirmed_and_raises(
    event_log: EventLog, engine: AsyncEngine, broker: Broker, captured: AbstractQueue
) -> None:
    async with event_log.transaction() as tx:
        await write_outbox(tx.driver, requests(5))
    failing = OutboxRelay(engine, FailingPublisher(broker, 2, ConnectionError("broker away")))
    with pytest.raises(ConnectionError):
        await failing.relay_once()
    assert await failing.backlog() == 3
    assert await OutboxRelay(engine, broker).relay_once() == 3
    ids = [message_id for message_id, _, _ in await take(captured, 5)]
    assert ids == [f"prepull:{i}" for i in range(5)]


async def test_run_relays_on_wake_and_stops(
    event_log: EventLog, engine: AsyncEngine, broker: Broker, captured: AbstractQueue
) -> None:
    relay = OutboxRelay(engine, broker, poll_interval=timedelta(seconds=30))
    running = asyncio.create_task(relay.run())
    await asyncio.sleep(0.05)
    async with event_log.transaction() as tx:
        await write_outbox(tx.driver, requests(3))
    relay.wake()
    await wait_until(lambda: _backlog_is(relay, 0), what="the relay to publish")
    relay.stop()
    await asyncio.wait_for(running, 5)
    assert len(await take(captured, 3)) == 3


async def test_one_relay_at_a_time(
    event_log: EventLog, engine: AsyncEngine, broker: Broker
) -> None:
    async with event_log.transaction() as tx:
        await write_outbox(tx.driver, requests(2))
    gate = asyncio.Event()

    class Slow:
        async def publish(self, routing_key: str, body: bytes, *, message_id: str,
                          headers: Mapping[str, str] | None = None) -> None:  # fmt: skip
            await gate.wait()

    first = asyncio.create_task(OutboxRelay(engine, Slow()).relay_once())
    await asyncio.sleep(0.2)
    assert await OutboxRelay(engine, broker).relay_once() == 0  # the lock is held
    gate.set()
    assert await first == 2


async def _backlog_is(relay: OutboxRelay, count: int) -> bool:
    return await relay.backlog() == count


async def test_a_relay_that_finds_the_lock_held_tries_again_soon_not_at_the_next_poll(
    event_log: EventLog, engine: AsyncEngine, broker: Broker, captured: AbstractQueue
) -> None:
    """Another worker's relay holds the lock (here: a transaction that took it) while this
    worker's rows are written and its relay woken: they go out once the lock is free, long
    before the 60 s poll."""
    relay = OutboxRelay(engine, broker, poll_interval=timedelta(seconds=60))
    async with engine.begin() as holder:
        await holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RELAY_LOCK_KEY})
        running = asyncio.create_task(relay.run())
        async with event_log.transaction() as tx:
            await write_outbox(tx.driver, requests(3))
        relay.wake()
        await asyncio.sleep(0.3)
        assert await relay.backlog() == 3  # the lock is held: nothing went out
    await wait_until(lambda: _backlog_is(relay, 0), what="the relay to publish", within=10)
    relay.stop()
    await asyncio.wait_for(running, 5)
    assert len(await take(captured, 3)) == 3
