"""A list of AMQP URLs: the first connection skips dead nodes, and a lost connection moves
to the next node that answers, with its consumers, publisher confirms and unacked batches;
the dead-letter tools take the first node that answers.

The "nodes" are the one real broker, reached directly or through a relay the test cuts, and
closed loopback ports (a node that is down)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from attrs import evolve
from yarl import URL

from tests.support.net import free_port
from tests.support.rabbit import drop_connections, publish_raw, queue_depth, wait_until
from tests.support.tcp_relay import TcpRelay
from worker.adapters.broker import (
    Broker,
    BrokerSettings,
    BrokerUnavailableError,
    DeadLetterQueue,
)
from worker.domain.messages import Delivery, RefreshRequested

KEY = "refresh.request"


def via(url: str, port: int) -> str:
    """``url`` (the test's vhost on the real broker) through another port."""
    return str(URL(url).with_port(port))


async def publish(connection: AbstractRobustConnection, exchange: str, ids: list[str]) -> None:
    for message_id in ids:
        body = json.dumps({"reason": message_id}).encode()
        await publish_raw(connection, exchange, KEY, body, message_id=message_id)


async def exists(connection: AbstractRobustConnection, queue: str) -> bool:
    try:
        await queue_depth(connection, queue)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return False
    return True


async def test_the_first_connection_skips_a_dead_node(
    broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    dead = via(broker_settings.url, free_port())
    broker = Broker(evolve(broker_settings, url=f"{dead},{broker_settings.url}"))
    started = time.monotonic()
    await broker.connect()
    try:
        assert time.monotonic() - started < 2  # no back-off: the second URL answered at once
        seen: list[str] = []

        async def record(batch: list[Delivery]) -> None:
            seen.extend(d.message_id for d in batch)

        await broker.consume(KEY, record)
        await broker.publish_message(RefreshRequested(reason="own"), message_id="own")
        await publish(rabbit_connection, broker.topology.exchange, ["outside"])
        await wait_until(lambda: sorted(seen) == ["outside", "own"], what="both messages")
    finally:
        await broker.close()


async def test_no_node_answering_is_unavailable_naming_each_without_passwords(
    broker_settings: BrokerSettings,
) -> None:
    dead = [via(broker_settings.url, free_port()) for _ in range(2)]
    broker = Broker(evolve(broker_settings, url=",".join(dead), connect_attempts=2))
    with pytest.raises(BrokerUnavailableError) as caught:
        await broker.connect()
    message = str(caught.value)
    assert "unreachable after 2 attempts" in message
    for url in dead:
        assert f"127.0.0.1:{URL(url).port}" in message
    assert "guest:guest" not in message
    assert not broker.connected


async def test_a_lost_node_is_left_for_the_next_one_that_answers(
    broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    """Connected through the relay; the relay is cut while a batch is in the handler. The
    connection skips the dead node after it and comes back through the direct URL; the
    held batch, never acknowledged, is delivered again there; confirms work again, and the
    topology is declared again (a queue deleted meanwhile is back)."""
    relay = await TcpRelay(int(URL(broker_settings.url).port or 5672)).start()
    dead = via(broker_settings.url, free_port())
    urls = [via(broker_settings.url, relay.port), dead, broker_settings.url]
    broker = Broker(evolve(broker_settings, url=",".join(urls)))
    await broker.connect()
    seen: Counter[str] = Counter()
    holding, release = asyncio.Event(), asyncio.Event()

    async def record(batch: list[Delivery]) -> None:
        if any(d.message_id == "held" for d in batch) and not release.is_set():
            holding.set()
            await release.wait()
        seen.update(d.message_id for d in batch)

    try:
        await broker.consume(KEY, record)
        exchange = broker.topology.exchange
        assert relay.connections == 1
        await publish(rabbit_connection, exchange, ["before"])
        await wait_until(lambda: seen["before"] == 1, what="a message through the relay")

        await publish(rabbit_connection, exchange, ["held"])
        await asyncio.wait_for(holding.wait(), 10)
        discard = f"{broker.topology.exchange}.outbound.discard"
        async with rabbit_connection.channel() as channel:
            await channel.queue_delete(discard)  # declared again once reconnected
        await relay.cut()
        await wait_until(lambda: not broker.connected, what="the connection to be lost")
        release.set()  # the handler returns; its ack has no channel left to go through

        await publish(rabbit_connection, exchange, ["after"])
        await wait_until(
            lambda: seen["after"] == 1 and seen["held"] == 2,
            within=20,
            what="the held batch again and a new message through the next node",
        )
        assert broker.connected

        await broker.publish_message(RefreshRequested(reason="own"), message_id="own")
        await wait_until(lambda: seen["own"] == 1, what="a confirmed publish after failover")
        assert await queue_depth(rabbit_connection, broker.topology.queue_for(KEY).name) == 0
        await wait_until(lambda: exists(rabbit_connection, discard), what="the topology again")
        assert seen == Counter({"before": 1, "held": 2, "after": 1, "own": 1})
        # The direct URL carries the connection now (the relay refuses; the dead port too).
        assert await drop_connections(f"imageledger {exchange}") == 1
    finally:
        await broker.close()
        await relay.cut()


async def test_the_dead_letter_tools_use_the_first_node_that_answers(
    broker: Broker, broker_settings: BrokerSettings
) -> None:
    dead = via(broker_settings.url, free_port())
    async with DeadLetterQueue(f"{dead},{broker_settings.url}", broker_settings.prefix) as queue:
        assert queue.name == broker.topology.dead_queue
        assert await queue.count() == 0
    with pytest.raises(BrokerUnavailableError, match="cannot reach RabbitMQ at"):
        await DeadLetterQueue(f"{dead},{dead}", broker_settings.prefix).open()
