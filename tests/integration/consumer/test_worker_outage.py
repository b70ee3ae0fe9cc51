"""A PostgreSQL outage longer than the retry budget: batches are held, nothing dead-lettered.

The worker runs in this process with two attempts per message and a retry budget of about
1.5 s; PostgreSQL is stopped for about 8 s while messages arrive, then started again (in a
``finally``: other tests share the server). Every message must be folded exactly once, the
dead-letter and delay queues stay empty, and each wait is logged once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import attrs
import pytest
import structlog
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.database import pg_ctlcluster, postgres_ready
from tests.support.rabbit import queue_depth, wait_until
from tests.support.worker_process import (
    completion_counts,
    completions_recorded,
    pod_completions,
    publish_bulk,
)
from worker import factory
from worker.adapters.broker.connection import BrokerSettings
from worker.consumer import Worker
from worker.converter import parse_config

KEY = "prepull.pod_completed"
OUTAGE_S = 8.0
BEFORE, DURING = 200, 300

pytestmark = pytest.mark.slow


@asynccontextmanager
async def postgres_stopped() -> AsyncIterator[None]:
    """PostgreSQL down for the block; always started again."""
    try:
        await pg_ctlcluster("stop")
        yield
    finally:
        if not await postgres_ready():
            await pg_ctlcluster("start")
        await wait_until(postgres_ready, within=60, what="PostgreSQL back")


@asynccontextmanager
async def running_worker(settings: BrokerSettings, url: str) -> AsyncIterator[None]:
    source = {"type": "docker", "registry": "127.0.0.1:9", "repository": "lab", "insecure": True}
    config = parse_config({"images": {"source": source}, "prepull": {"planInterval": 0.5}})
    async with factory.runtime(config, settings, url) as runtime:
        worker = Worker(runtime, schedule_refreshes=False)
        await worker.start()
        try:
            yield
        finally:
            await worker.stop()


async def test_a_database_outage_longer_than_the_retry_budget_dead_letters_nothing(
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    settings = attrs.evolve(
        broker_settings,
        max_attempts=2,
        retry_delay=timedelta(milliseconds=500),
        max_retry_delay=timedelta(seconds=1),
        outage_delay=timedelta(milliseconds=250),
        max_outage_delay=timedelta(seconds=2),
    )
    messages = pod_completions(BEFORE + DURING)
    prefix = settings.prefix
    with structlog.testing.capture_logs() as logs:
        async with running_worker(settings, database_url):
            await publish_bulk(rabbit_connection, prefix, KEY, messages[:BEFORE])
            await wait_until(
                lambda: _recorded(engine, BEFORE), within=30, what="the first messages"
            )
            async with postgres_stopped():
                await publish_bulk(rabbit_connection, prefix, KEY, messages[BEFORE:])
                await asyncio.sleep(OUTAGE_S)
                restarted = time.monotonic()
            await engine.dispose()  # the test's pool holds connections the stop closed
            await wait_until(
                lambda: _recorded(engine, BEFORE + DURING), within=30, what="every message"
            )
            caught_up = time.monotonic() - restarted
    counts = await completion_counts(engine)
    assert set(counts) == {message_id for message_id, _ in messages}
    assert set(counts.values()) == {1}
    assert await queue_depth(rabbit_connection, f"{prefix}.dead") == 0
    assert await queue_depth(rabbit_connection, f"{prefix}.pod_completed.delay") == 0
    events = [entry["event"] for entry in logs]
    waits = [e for e in events if e.startswith("database unavailable, retrying in ")]
    assert waits, "no wait was logged"
    assert "message dead-lettered" not in events
    assert "message delayed for another attempt" not in events
    assert "batch failed unexpectedly; batch returned" not in events
    for error in sorted({str(e.get("error"))[:100] for e in logs if e["event"] in waits}):
        print("held on:", error)
    print(f"outage {OUTAGE_S:.0f} s, {len(waits)} waits logged, caught up in {caught_up:.1f} s")


async def _recorded(engine: AsyncEngine, count: int) -> bool:
    try:
        return await completions_recorded(engine) >= count
    except (OSError, asyncpg.PostgresError):
        return False
