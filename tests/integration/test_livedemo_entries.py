"""The compose stack's own processes: the registry seeder and the standalone cluster simulator."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, timedelta

import aio_pika
import aiohttp

from livedemo.cluster import ClusterTiming
from livedemo.repository import REPOSITORY, sample_repository
from livedemo.seed import seed
from livedemo.simulate import simulate
from tests.support.registry import RunningRegistry
from worker.converter import decode_message
from worker.domain.messages import (
    InboundMessage,
    NodeInventory,
    PodCompleted,
    RefreshRequested,
)

TODAY = date(2077, 11, 10)
DIGEST = "sha256:" + "cd" * 32


async def test_the_seeder_pushes_the_sample_repository(registry: RunningRegistry) -> None:
    digests = await seed(registry.url, short=True, today=TODAY, wait=10)
    sample = sample_repository(TODAY, short=True)
    async with (
        aiohttp.ClientSession() as session,
        session.get(registry.url / "v2" / REPOSITORY / "tags/list") as response,
    ):
        listed = (await response.json())["tags"]
    expected = {*sample.images, *(alias for alias, _ in sample.aliases)}
    assert set(listed) == expected
    assert set(digests) == expected
    assert digests["recommended"] == digests[dict(sample.aliases)["recommended"]]
    assert len({digests[tag] for tag in sample.images}) == len(sample.images)
    again = await seed(registry.url, short=True, today=TODAY, wait=10)
    assert again == digests


async def collect(
    queue: aio_pika.abc.AbstractQueue, keys: set[str], within: float
) -> list[InboundMessage]:
    """Messages on ``queue``, decoded as the worker would, until one of each routing key in
    ``keys`` has arrived."""
    found: list[InboundMessage] = []
    deadline = asyncio.get_running_loop().time() + within
    while not keys <= {m.ROUTING_KEY for m in found}:
        assert asyncio.get_running_loop().time() < deadline, f"only {found}"
        message = await queue.get(fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        await message.ack()
        found.append(decode_message(str(message.routing_key), message.body))
    return found


async def test_the_simulator_plays_the_cluster(amqp_url: str) -> None:
    prefix = f"il-sim-{uuid.uuid4().hex[:8]}"
    stop = asyncio.Event()
    timing = ClusterTiming(pull_seconds=(0.05, 0.1), inventory_every=60.0)
    running = asyncio.create_task(
        simulate(amqp_url, prefix, "registry:5000", 3, stop, timing=timing, wait=20)
    )
    await asyncio.sleep(1.0)  # the simulator waits for the worker's exchange
    assert not running.done()
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            prefix, aio_pika.ExchangeType.TOPIC, auto_delete=True
        )
        queue = await channel.declare_queue(exclusive=True)
        for key in (NodeInventory, RefreshRequested, PodCompleted):
            await queue.bind(exchange, key.ROUTING_KEY)
        found = await collect(queue, {"node.inventory", "refresh.request"}, within=15)
        inventories = [m for m in found if isinstance(m, NodeInventory)]
        assert sorted(m.node for m in inventories) == ["node-1", "node-2", "node-3"]
        assert [bool(m.taints) for m in sorted(inventories, key=lambda m: m.node)] == [
            False,
            False,
            True,
        ]
        request = {
            "image": f"registry:5000/{REPOSITORY}:w_2077_45@{DIGEST}",
            "tag": "w_2077_45",
            "digest": DIGEST,
            "node": "node-1",
            "attempt": 2,
            "deadline": (datetime.now(tz=UTC) + timedelta(minutes=5)).isoformat(),
        }
        await exchange.publish(
            aio_pika.Message(json.dumps(request).encode(), message_id="req-1"),
            "prepull.requested",
        )
        found = await collect(queue, {"prepull.pod_completed"}, within=15)
        (completed,) = [m for m in found if isinstance(m, PodCompleted)]
        assert completed.node == "node-1"
        assert completed.succeeded
        assert str(completed.image).endswith(DIGEST)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        await connection.close()
