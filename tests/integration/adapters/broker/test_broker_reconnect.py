"""Robust connections: the broker drops the worker's connection; consuming and publishing
resume by themselves and nothing is lost."""

from __future__ import annotations

import json

from aio_pika.abc import AbstractRobustConnection

from tests.support.rabbit import drop_connections, publish_raw, queue_depth, wait_until
from worker.adapters.broker.connection import Broker, BrokerUnavailableError
from worker.domain.messages import Delivery, RefreshRequested

KEY = "refresh.request"


async def test_consuming_and_publishing_resume_after_the_connection_drops(
    broker: Broker, rabbit_connection: AbstractRobustConnection
) -> None:
    seen: set[str] = set()

    async def record(batch: list[Delivery]) -> None:
        seen.update(d.message_id for d in batch)

    topology = broker.topology
    await broker.consume(KEY, record)
    for i in range(5):
        body = json.dumps({"reason": f"before-{i}"}).encode()
        await publish_raw(rabbit_connection, topology.exchange, KEY, body, message_id=f"b-{i}")
    await wait_until(lambda: len(seen) == 5, what="messages before the drop")

    assert broker.connected
    assert await drop_connections(f"imageledger {topology.exchange}") == 1
    for i in range(5):
        body = json.dumps({"reason": f"after-{i}"}).encode()
        await publish_raw(rabbit_connection, topology.exchange, KEY, body, message_id=f"a-{i}")

    await wait_until(lambda: len(seen) == 10, within=20, what="messages after the drop")
    assert seen == {f"b-{i}" for i in range(5)} | {f"a-{i}" for i in range(5)}
    assert await queue_depth(rabbit_connection, topology.queue_for(KEY).name) == 0

    async def published() -> bool:
        try:
            await broker.publish_message(RefreshRequested(reason="own"), message_id="own")
        except BrokerUnavailableError:
            return False  # still reconnecting: the caller (outbox relay) retries later
        return True

    await wait_until(published, within=20, what="publishing to work again")
    assert broker.connected
    await wait_until(lambda: "own" in seen, what="the worker's own message")
