"""The RabbitMQ topology: declared from data, idempotently, with the bindings it promises."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.support.rabbit import publish_raw, queue_depth
from worker.adapters.broker.connection import (
    Broker,
    BrokerError,
    BrokerSettings,
    BrokerUnavailableError,
    build_topology,
)


def test_topology_as_data() -> None:
    topology = build_topology("imageledger")
    assert topology.exchange == "imageledger"
    assert topology.dead_exchange == topology.dead_queue == "imageledger.dead"
    refresh = topology.queue_for("refresh.request")
    assert (refresh.name, refresh.delay_queue) == (
        "imageledger.refresh",
        "imageledger.refresh.delay",
    )
    work = topology.spec("imageledger.refresh")
    assert work.bindings == (("imageledger", "refresh.request"),)
    assert work.arguments["x-queue-type"] == "quorum"
    assert work.arguments["x-single-active-consumer"] is True
    assert work.arguments["x-dead-letter-exchange"] == "imageledger.dead"
    delay = topology.spec("imageledger.refresh.delay")
    assert delay.arguments["x-dead-letter-exchange"] == ""
    assert delay.arguments["x-dead-letter-routing-key"] == "imageledger.refresh"
    assert "x-single-active-consumer" not in topology.spec("imageledger.pod_completed").arguments
    assert topology.queue_for("node.inventory").name == "imageledger.node_inventory"
    with pytest.raises(BrokerError, match=r"prepull\.requested"):
        topology.queue_for("prepull.requested")


async def test_declaring_twice_changes_nothing_and_binds_every_key(
    broker: Broker, broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    second = Broker(broker_settings)  # declares what ``broker`` declared once more
    await second.connect()
    await second.close()

    topology = broker.topology
    for queue in topology.inbound:
        for key in queue.routing_keys:
            await publish_raw(rabbit_connection, topology.exchange, key, b"{}", message_id=key)
    for queue in topology.inbound:  # one message per routing key bound to the queue
        assert await queue_depth(rabbit_connection, queue.name) == len(queue.routing_keys)
        assert await queue_depth(rabbit_connection, queue.delay_queue) == 0
    assert await queue_depth(rabbit_connection, topology.dead_queue) == 0


async def test_a_conflicting_queue_is_an_error_naming_it(
    broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    name = f"{broker_settings.prefix}.pod_completed"
    async with rabbit_connection.channel() as channel:
        await channel.declare_queue(name, durable=True)  # a classic queue
    broker = Broker(broker_settings)
    with pytest.raises(BrokerError, match=re.escape(f"queue '{name}' exists with other arguments")):
        await broker.connect()
    assert not broker.connected


async def test_unreachable_broker_fails_after_bounded_attempts() -> None:
    settings = BrokerSettings(
        url="amqp://guest:secret@127.0.0.1:1/",
        reconnect_delay=timedelta(milliseconds=10),
        connect_attempts=2,
    )
    with pytest.raises(BrokerUnavailableError, match=r"unreachable after 2 attempts") as caught:
        await Broker(settings).connect()
    assert "secret" not in str(caught.value)
