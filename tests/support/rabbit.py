"""RabbitMQ for tests: a fresh virtual host per test, broker settings, and queue helpers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from worker.adapters.broker.connection import Broker, BrokerSettings

__all__ = [
    "amqp_url",
    "broker",
    "broker_settings",
    "drain",
    "drop_connections",
    "own_vhost",
    "publish_raw",
    "queue_depth",
    "rabbit_connection",
    "wait_until",
]

BASE_URL_ENV = "IMAGELEDGER_TEST_AMQP_URL"
BASE_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _base_url() -> str:
    return os.environ.get(BASE_URL_ENV, BASE_URL)


def _reachable(host: str = "127.0.0.1", port: int = 5672) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


async def _rabbitmqctl(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        "-q",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {stderr.decode().strip()}")
    return stdout.decode()


async def drop_connections(name: str) -> int:
    """Have the broker close every connection whose client named itself ``name`` (as a
    network failure would); returns how many it closed."""
    listing = await _rabbitmqctl(
        "list_connections", "--no-table-headers", "pid", "client_properties"
    )
    quoted = json.dumps(name)
    pids = [line.split("\t")[0] for line in listing.splitlines() if quoted in line]
    for pid in pids:
        await _rabbitmqctl("close_connection", pid, "test: connection dropped")
    return len(pids)


@asynccontextmanager
async def own_vhost(prefix: str = "test") -> AsyncIterator[str]:
    """The AMQP URL of a virtual host of our own, deleted when the block ends.

    Needs RabbitMQ on 127.0.0.1:5672 (``rabbitmq-server -detached``) and ``rabbitmqctl``
    (run as root); without ``rabbitmqctl`` the default vhost is used, and unique queue
    name prefixes keep users apart.
    """
    if not _reachable():
        raise RuntimeError("RabbitMQ is not running on 127.0.0.1:5672 (rabbitmq-server -detached)")
    if shutil.which("rabbitmqctl") is None or os.geteuid() != 0:
        yield _base_url()
        return
    vhost = f"{prefix}-{uuid.uuid4().hex[:12]}"
    await _rabbitmqctl("add_vhost", vhost)
    try:
        await _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield _base_url().rstrip("/") + "/" + quote(vhost, safe="")
    finally:
        await _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
async def amqp_url() -> AsyncIterator[str]:
    """The AMQP URL of a virtual host of this test's own (deleted afterwards); see
    ``own_vhost``."""
    if not _reachable():
        pytest.fail("RabbitMQ is not running on 127.0.0.1:5672 (rabbitmq-server -detached)")
    async with own_vhost() as url:
        yield url


@pytest.fixture
def broker_settings(amqp_url: str) -> BrokerSettings:
    """Settings with a unique name prefix and test-sized batching and retry delays."""
    return BrokerSettings(
        url=amqp_url,
        prefix=f"il-{uuid.uuid4().hex[:8]}",
        prefetch=50,
        batch_size=20,
        batch_timeout=timedelta(milliseconds=30),
        max_attempts=3,
        retry_delay=timedelta(milliseconds=50),
        max_retry_delay=timedelta(milliseconds=200),
        outage_delay=timedelta(milliseconds=50),
        max_outage_delay=timedelta(milliseconds=400),
        reconnect_delay=timedelta(milliseconds=100),
        connect_attempts=3,
    )


@pytest.fixture
async def broker(broker_settings: BrokerSettings) -> AsyncIterator[Broker]:
    """A connected broker (topology declared), closed after the test."""
    running = Broker(broker_settings)
    await running.connect()
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def rabbit_connection(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    """A plain aio-pika connection for the test's own publishing and inspection."""
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        yield connection
    finally:
        await connection.close()


async def publish_raw(
    connection: AbstractRobustConnection,
    exchange: str,
    routing_key: str,
    body: bytes,
    *,
    message_id: str | None = None,
    headers: dict[str, Any] | None = None,
) -> None:
    """Publish bytes as an outside publisher would (confirmed, persistent)."""
    async with connection.channel() as channel:
        target = await channel.get_exchange(exchange) if exchange else channel.default_exchange
        message = aio_pika.Message(
            body,
            message_id=message_id,
            headers=headers,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await target.publish(message, routing_key)


async def queue_depth(connection: AbstractRobustConnection, queue: str) -> int:
    """Ready messages in a queue (a passive declare)."""
    async with connection.channel() as channel:
        declared = await channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        return int(count or 0)


async def drain(
    connection: AbstractRobustConnection, queue: str, count: int, within: float = 10.0
) -> list[AbstractIncomingMessage]:
    """Take (and ack) ``count`` messages from a queue, waiting up to ``within`` seconds."""
    out: list[AbstractIncomingMessage] = []
    deadline = time.monotonic() + within
    async with connection.channel() as channel:
        declared = await channel.declare_queue(queue, passive=True)
        while len(out) < count:
            message = await declared.get(fail=False)
            if message is None:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{queue}: {len(out)} of {count} messages arrived")
                await asyncio.sleep(0.02)
                continue
            await message.ack()
            out.append(message)
    return out


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], within: float = 10.0, what: str = ""
) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)
