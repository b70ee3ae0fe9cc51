"""Unroutable routing keys: the exchange's alternate exchange dead-letters them.

A typo such as ``prepull.pod_complete`` used to vanish in the topic exchange. Now it lands
in the dead-letter queue and ``imageledger dead-letters list`` names the reason; our own
outbound messages stay routable when nobody subscribes; an exchange an older version
created keeps working (with a warning) since its arguments cannot change in place.
"""

from __future__ import annotations

import asyncio
import json

from aio_pika.abc import AbstractRobustConnection
from click.testing import CliRunner

from tests.support.rabbit import publish_raw, queue_depth, wait_until
from worker.adapters.broker import Broker, BrokerSettings
from worker.cli import main
from worker.domain.messages import OUTBOUND_MESSAGES, PodCompleted

TYPO = "prepull.pod_complete"


async def test_a_typo_routing_key_is_dead_lettered_with_the_reason(
    broker: Broker, broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    topology = broker.topology
    await publish_raw(rabbit_connection, topology.exchange, TYPO, b"{}", message_id="typo-1")

    async def arrived() -> bool:
        return await queue_depth(rabbit_connection, topology.dead_queue) == 1

    await wait_until(arrived, what="the unroutable message in the dead-letter queue")
    where = ["--amqp-url", broker_settings.url, "--prefix", broker_settings.prefix]
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["dead-letters", "list", *where, "--json"]
    )
    assert result.exit_code == 0, result.output
    letters = json.loads(result.stdout)["dead_letters"]
    assert [(d["message_id"], d["routing_key"], d["reason"]) for d in letters] == [
        ("typo-1", TYPO, f"unroutable routing key {TYPO}")
    ]


async def test_outbound_messages_without_subscribers_are_not_dead_letters(
    broker: Broker, rabbit_connection: AbstractRobustConnection
) -> None:
    for key in OUTBOUND_MESSAGES:
        await broker.publish(key, b"{}", message_id=f"out-{key}")
    await publish_raw(
        rabbit_connection,
        broker.topology.exchange,
        PodCompleted.ROUTING_KEY,
        b"{}",
        message_id="in",
    )

    assert await queue_depth(rabbit_connection, broker.topology.dead_queue) == 0
    assert (
        await queue_depth(
            rabbit_connection, broker.topology.queue_for(PodCompleted.ROUTING_KEY).name
        )
        == 1
    )


async def test_an_exchange_from_before_the_alternate_exchange_still_works(
    broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    async with rabbit_connection.channel() as channel:
        await channel.declare_exchange(broker_settings.prefix, "topic", durable=True)
    broker = Broker(broker_settings)
    await broker.connect()
    try:
        topology = broker.topology
        await publish_raw(
            rabbit_connection, topology.exchange, PodCompleted.ROUTING_KEY, b"{}", message_id="m"
        )
        work = topology.queue_for(PodCompleted.ROUTING_KEY).name

        async def routed() -> bool:
            return await queue_depth(rabbit_connection, work) == 1

        await wait_until(routed, what="the message on its work queue")
        await broker.publish(PodCompleted.ROUTING_KEY, b"{}", message_id="m2")
        assert broker.connected
    finally:
        await broker.close()
