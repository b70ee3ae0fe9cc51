"""The batch consumer against a real RabbitMQ: batches, poison messages, ack after handling."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import sys
from typing import Any

import aiormq.channel
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.support.rabbit import drain, publish_raw, queue_depth, wait_until
from worker.adapters.broker.connection import (
    QUEUE_HEADER,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    Broker,
    BrokerSettings,
)
from worker.domain.messages import MAX_MESSAGE_BYTES, Delivery, PodCompleted

DIGEST = "sha256:" + "cd" * 32
IMAGE = f"registry.example.com/sqre/sciplat-lab:w_2077_01@{DIGEST}"
KEY = "prepull.pod_completed"


def completion(pod: str, **changes: Any) -> dict[str, Any]:
    return {
        "node": "node-1",
        "image": IMAGE,
        "pod": pod,
        "succeeded": True,
        "finished_at": "2077-01-01T00:00:00Z",
        **changes,
    }


def encoded(data: Any) -> bytes:
    return json.dumps(data).encode()


class Recorder:
    """A handler that records the batches it was given."""

    def __init__(self) -> None:
        self.batches: list[list[Delivery]] = []

    async def __call__(self, batch: list[Delivery]) -> None:
        self.batches.append(batch)

    @property
    def deliveries(self) -> list[Delivery]:
        return [d for batch in self.batches for d in batch]


async def test_valid_messages_arrive_in_batches_and_are_acked_after_the_handler(
    broker: Broker, broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    exchange = broker.topology.exchange
    for i in range(60):
        body = encoded(completion(f"pod-{i}"))
        await publish_raw(rabbit_connection, exchange, KEY, body, message_id=f"m-{i}")
    recorder = Recorder()
    await broker.consume(KEY, recorder)
    await wait_until(lambda: len(recorder.deliveries) == 60, what="60 deliveries")
    await broker.stop_consuming()

    assert [d.message_id for d in recorder.deliveries] == [f"m-{i}" for i in range(60)]
    assert all(isinstance(d.message, PodCompleted) for d in recorder.deliveries)
    assert {(d.routing_key, d.attempt) for d in recorder.deliveries} == {(KEY, 1)}
    sizes = [len(batch) for batch in recorder.batches]
    assert max(sizes) > 1
    assert max(sizes) <= broker_settings.batch_size
    queue = broker.topology.queue_for(KEY)
    assert await queue_depth(rabbit_connection, queue.name) == 0  # acked, not returned
    assert await queue_depth(rabbit_connection, broker.topology.dead_queue) == 0


def poison() -> list[tuple[str, bytes, str]]:
    """(message id, body, expected reason) for every kind of bad message."""
    oversize = encoded(completion("big", reason="x" * MAX_MESSAGE_BYTES))
    return [
        ("bad-json", b'{"node": ', "malformed JSON"),
        ("unknown-field", encoded(completion("p", color="red")), "extra fields found (color) @ $"),
        ("wrong-type", encoded(completion("p", succeeded="yes")), "@ $.succeeded"),
        ("naive-time", encoded(completion("p", finished_at="2077-01-01T00:00:00")),
         "has no time zone @ $.finished_at"),
        ("bad-reference", encoded(completion("p", image="registry.example.com/UPPER:1")),
         "invalid repository @ $.image"),
        ("no-digest", encoded(completion("p", image="registry.example.com/lab:1")),
         "has no digest @ $.image"),
        ("oversize", oversize, "over the limit of 1048576 bytes"),
        ("failed-no-reason", encoded(completion("p", succeeded=False)),
         "required when succeeded is false @ $.reason"),
    ]  # fmt: skip


async def test_poison_messages_are_dead_lettered_with_reasons_while_valid_ones_flow(
    broker: Broker, rabbit_connection: AbstractRobustConnection
) -> None:
    topology = broker.topology
    queue = topology.queue_for(KEY)
    recorder = Recorder()
    await broker.consume(KEY, recorder)
    bad = poison()
    for i, (message_id, body, _) in enumerate(bad):
        await publish_raw(rabbit_connection, topology.exchange, KEY, body, message_id=message_id)
        good = encoded(completion(f"good-{i}"))
        await publish_raw(rabbit_connection, topology.exchange, KEY, good, message_id=f"good-{i}")
    # A routing key the worker does not know, sent straight to the work queue.
    await publish_raw(rabbit_connection, "", queue.name, b"{}", message_id="unknown-key")

    dead = await drain(rabbit_connection, topology.dead_queue, len(bad) + 1)
    await wait_until(lambda: len(recorder.deliveries) == len(bad), what="valid deliveries")

    assert [d.message_id for d in recorder.deliveries] == [f"good-{i}" for i in range(len(bad))]
    by_id = {m.message_id: m for m in dead}
    for message_id, body, expected in bad:
        headers = by_id[message_id].headers
        assert expected in str(headers[REASON_HEADER]), message_id
        assert headers[ROUTING_KEY_HEADER] == KEY
        assert headers[QUEUE_HEADER] == queue.name
        assert by_id[message_id].body == body
    unknown = by_id["unknown-key"].headers
    assert f"unknown routing key '{queue.name}'" in str(unknown[REASON_HEADER])
    assert await queue_depth(rabbit_connection, queue.name) == 0


class _NoId:
    """Stands in for aiormq's UUID so a publish goes out without a message id, as one from
    a client that sets none (aiormq always invents one)."""

    hex = None

    def __init__(self, *_: Any, **__: Any) -> None:
        pass


async def test_a_message_without_an_id_is_known_by_its_body_hash(
    broker: Broker, rabbit_connection: AbstractRobustConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = encoded(completion("anonymous"))
    with monkeypatch.context() as patch:
        patch.setattr(aiormq.channel, "UUID", _NoId)
        for _ in range(2):
            await publish_raw(rabbit_connection, broker.topology.exchange, KEY, body)
    recorder = Recorder()
    await broker.consume(KEY, recorder)
    await wait_until(lambda: len(recorder.deliveries) == 2, what="two deliveries")
    expected = "sha256:" + hashlib.sha256(body).hexdigest()
    assert [d.message_id for d in recorder.deliveries] == [expected, expected]


_BLOCKING_WORKER = """
import asyncio, sys
from datetime import timedelta
from worker.adapters.broker.connection import Broker, BrokerSettings

async def main() -> None:
    settings = BrokerSettings(url=sys.argv[1], prefix=sys.argv[2], batch_size=100,
                              batch_timeout=timedelta(milliseconds=300))
    broker = Broker(settings)
    await broker.connect()

    async def handler(batch):
        sys.stderr.write(f"handling {len(batch)}\\n")
        sys.stderr.flush()
        await asyncio.Event().wait()  # never commits

    await broker.consume("prepull.pod_completed", handler)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_nothing_is_acked_before_the_handler_returns(
    broker: Broker, broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    topology = broker.topology
    queue = topology.queue_for(KEY)
    for i in range(10):
        body = encoded(completion(f"pod-{i}"))
        await publish_raw(rabbit_connection, topology.exchange, KEY, body, message_id=f"m-{i}")
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _BLOCKING_WORKER, broker_settings.url, broker_settings.prefix,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert worker.stderr is not None
        async with asyncio.timeout(20):
            while not (line := await worker.stderr.readline()).startswith(b"handling"):
                assert line, "the worker exited before handling"
        assert await queue_depth(rabbit_connection, queue.name) == 0  # all delivered, unacked
    finally:
        worker.send_signal(signal.SIGKILL)
        await worker.wait()

    await wait_until(
        lambda: _depth_is(rabbit_connection, queue.name, 10), what="messages to come back"
    )
    recorder = Recorder()
    await broker.consume(KEY, recorder)
    await wait_until(lambda: len(recorder.deliveries) == 10, what="redeliveries")
    assert sorted(d.message_id for d in recorder.deliveries) == sorted(f"m-{i}" for i in range(10))
    assert {d.attempt for d in recorder.deliveries} == {1}


async def _depth_is(connection: AbstractRobustConnection, queue: str, count: int) -> bool:
    return await queue_depth(connection, queue) == count


async def test_stop_finishes_the_batch_in_hand_then_acks_it(
    broker: Broker, rabbit_connection: AbstractRobustConnection
) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    handled: list[str] = []

    async def slow(batch: list[Delivery]) -> None:
        started.set()
        await release.wait()
        handled.extend(d.message_id for d in batch)

    topology = broker.topology
    await broker.consume(KEY, slow)
    await publish_raw(rabbit_connection, topology.exchange, KEY, encoded(completion("p")),
                      message_id="in-hand")  # fmt: skip
    await asyncio.wait_for(started.wait(), 10)
    stopping = asyncio.create_task(broker.stop_consuming())
    await asyncio.sleep(0.1)
    assert not stopping.done()  # waits for the handler
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert handled == ["in-hand"]
    assert await queue_depth(rabbit_connection, topology.queue_for(KEY).name) == 0
