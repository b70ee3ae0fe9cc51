"""Retries: held batches on transient failures; through the delay queue otherwise (attempt
header, bounded attempts, isolated failures)."""

from __future__ import annotations

import json
from typing import Any

from aio_pika.abc import AbstractRobustConnection

from tests.support.rabbit import drain, publish_raw, queue_depth, wait_until
from worker.adapters.broker.connection import (
    ATTEMPT_HEADER,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    Broker,
    BrokerSettings,
)
from worker.adapters.ledger.database import DatabaseUnavailableError
from worker.domain.messages import Delivery, NodeInventory

KEY = "node.inventory"


def inventory(node: str) -> bytes:
    return json.dumps({"node": node, "observed_at": "2077-01-01T00:00:00Z"}).encode()


async def publish(connection: AbstractRobustConnection, broker: Broker, *nodes: str) -> None:
    for node in nodes:
        await publish_raw(
            connection, broker.topology.exchange, KEY, inventory(node), message_id=f"id-{node}"
        )


async def test_a_transient_failure_holds_the_batch_without_counting_attempts(
    broker: Broker, rabbit_connection: AbstractRobustConnection
) -> None:
    attempts: list[tuple[str, int]] = []
    committed: list[str] = []

    async def flaky(batch: list[Delivery]) -> None:
        attempts.extend((d.message_id, d.attempt) for d in batch)
        if len(attempts) < 5:  # more failures than max_attempts (3)
            raise DatabaseUnavailableError("database away")
        committed.extend(d.message_id for d in batch)

    await publish(rabbit_connection, broker, "n1")
    await broker.consume(KEY, flaky)
    await wait_until(lambda: committed == ["id-n1"], what="the held batch to commit")
    assert attempts == [("id-n1", 1)] * 5  # the same first attempt, held, not delayed
    queue = broker.topology.queue_for(KEY)
    assert await queue_depth(rabbit_connection, queue.delay_queue) == 0
    assert await queue_depth(rabbit_connection, broker.topology.dead_queue) == 0


async def test_past_the_bound_a_failing_message_is_dead_lettered_with_its_reason(
    broker: Broker, broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    attempts: list[int] = []

    async def broken(batch: list[Delivery]) -> None:
        attempts.extend(d.attempt for d in batch)
        raise ValueError("cannot fold this")

    await publish(rabbit_connection, broker, "n1")
    await broker.consume(KEY, broken)
    (dead,) = await drain(rabbit_connection, broker.topology.dead_queue, 1)

    bound = broker_settings.max_attempts
    assert attempts == list(range(1, bound + 1))
    assert dead.message_id == "id-n1"
    assert dead.body == inventory("n1")
    headers: dict[str, Any] = dict(dead.headers)
    assert headers[REASON_HEADER] == f"gave up after {bound} attempts: ValueError: cannot fold this"
    assert headers[ATTEMPT_HEADER] == bound
    assert headers[ROUTING_KEY_HEADER] == KEY
    delay_queue = broker.topology.queue_for(KEY).delay_queue
    trips = {entry["queue"]: entry["count"] for entry in headers["x-death"]}
    assert trips == {delay_queue: bound - 1}


async def test_a_message_failing_on_its_own_is_isolated_and_the_rest_commit(
    broker: Broker, broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    committed: list[str] = []

    async def strict(batch: list[Delivery]) -> None:
        for delivery in batch:
            assert isinstance(delivery.message, NodeInventory)
            if delivery.message.node == "bad":
                raise ValueError("cannot fold node bad")
        committed.extend(d.message_id for d in batch)  # the "transaction" commits

    nodes = [f"n{i}" for i in range(5)] + ["bad"] + [f"n{i}" for i in range(5, 10)]
    await publish(rabbit_connection, broker, *nodes)
    await broker.consume(KEY, strict)
    (dead,) = await drain(rabbit_connection, broker.topology.dead_queue, 1)

    assert sorted(committed) == sorted(f"id-n{i}" for i in range(10))  # each exactly once
    assert dead.message_id == "id-bad"
    bound = broker_settings.max_attempts
    assert dead.headers[REASON_HEADER] == (
        f"gave up after {bound} attempts: ValueError: cannot fold node bad"
    )
