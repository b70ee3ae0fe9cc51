"""The worker under crashes and outages: SIGKILL, RabbitMQ and PostgreSQL restarts.

Each test publishes pod completions to a worker process (``imageledger run``) of its own
vhost and database, disturbs it under load, and then checks that every message is reflected
exactly once in the log, nothing was dead-lettered, and the live projections equal a
rebuild. ``IMAGELEDGER_KILL_TEST_N`` sets how many messages the kill tests publish (the
issue's figure: ``IMAGELEDGER_KILL_TEST_N=20000 pytest -m slow
tests/integration/consumer/test_worker_faults.py``, the default) and ``IMAGELEDGER_FAULT_TEST_N``
how many the fault tests publish (default 4,000).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.database import pg_ctlcluster, postgres_ready
from tests.support.rabbit import _rabbitmqctl, _reachable, queue_depth, wait_until
from tests.support.worker_process import (
    WorkerProcess,
    completion_counts,
    completions_recorded,
    pod_completions,
    publish_bulk,
    rebuild_matches,
    write_config,
)
from worker.adapters.broker.connection import BrokerSettings

KILL_N = int(os.environ.get("IMAGELEDGER_KILL_TEST_N", "20000"))
FAULT_N = int(os.environ.get("IMAGELEDGER_FAULT_TEST_N", "4000"))
KEY = "prepull.pod_completed"

pytestmark = pytest.mark.slow


def _workers(
    count: int, tmp_path: Path, database_url: str, settings: BrokerSettings
) -> list[WorkerProcess]:
    config = write_config(tmp_path / "config.json")
    return [
        WorkerProcess(config, database_url, settings.url, settings.prefix, tmp_path / f"w{i}.log")
        for i in range(count)
    ]


@pytest.fixture
async def stopped_workers() -> AsyncIterator[list[WorkerProcess]]:
    """Worker processes the test starts; whatever still runs is killed afterwards."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        await worker.kill()


async def _progress_to(engine: AsyncEngine, reached: int, within: float) -> None:
    async def recorded() -> bool:
        return await completions_recorded(engine) >= reached

    await wait_until(recorded, within=within, what=f"{reached} completions recorded")


async def _assert_exactly_once(
    engine: AsyncEngine,
    rabbit: AbstractRobustConnection,
    settings: BrokerSettings,
    ids: list[str],
    within: float,
) -> None:
    """Every id has exactly one completion event, queues are empty, nothing died, and the
    live projections equal a rebuild."""
    await _progress_to(engine, len(ids), within)

    async def drained() -> bool:
        return await queue_depth(rabbit, f"{settings.prefix}.pod_completed") == 0

    await wait_until(drained, within=10, what="the work queue drained")
    counts = await completion_counts(engine)
    missing = [i for i in ids if i not in counts]
    doubled = {i: n for i, n in counts.items() if n != 1}
    assert not missing, f"{len(missing)} messages not recorded, e.g. {missing[:5]}"
    assert not doubled, f"{len(doubled)} messages recorded more than once: {list(doubled)[:5]}"
    assert set(counts) == set(ids)
    assert await queue_depth(rabbit, f"{settings.prefix}.dead") == 0
    assert await rebuild_matches(engine) == []


async def _kill_three_times(
    engine: AsyncEngine,
    workers: list[WorkerProcess],
    publishing: asyncio.Task[None],
    total: int,
) -> None:
    """Kill one worker (in turn) at a quarter, half and three quarters of the way; restart it."""
    for round_, fraction in enumerate((0.25, 0.5, 0.75)):
        await _progress_to(engine, int(total * fraction), within=60)
        victim = workers[round_ % len(workers)]
        await victim.kill()
        at_kill = await completions_recorded(engine)
        assert at_kill < total, "the kill came after the work was done; nothing was tested"
        assert victim.returncode == -9
        await victim.start()
    await publishing


@pytest.mark.parametrize("processes", [1, 3], ids=["one-worker", "three-workers"])
async def test_sigkill_three_times_loses_and_duplicates_nothing(
    processes: int,
    tmp_path: Path,
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
    stopped_workers: list[WorkerProcess],
) -> None:
    workers = _workers(processes, tmp_path, database_url, broker_settings)
    stopped_workers.extend(workers)
    await asyncio.gather(*(w.start() for w in workers))  # declares the topology
    messages = pod_completions(KILL_N)
    started = time.monotonic()
    publishing = asyncio.create_task(
        publish_bulk(rabbit_connection, broker_settings.prefix, KEY, messages)
    )
    await _kill_three_times(engine, workers, publishing, KILL_N)
    await _assert_exactly_once(
        engine, rabbit_connection, broker_settings, [m for m, _ in messages], within=60
    )
    print(f"{KILL_N} messages, {processes} worker(s): {time.monotonic() - started:.1f} s")
    assert sum(w.starts for w in workers) == processes + 3
    assert all([await w.terminate() == 0 for w in workers])


async def _rabbit_restart() -> None:
    try:
        await _rabbitmqctl("stop_app")
        await asyncio.sleep(1)
    finally:
        await _rabbitmqctl("start_app")
        await wait_until(_reachable, within=30, what="RabbitMQ back")


async def _postgres_restart() -> None:
    try:
        await pg_ctlcluster("restart", within=30)
    finally:
        await wait_until(postgres_ready, within=30, what="PostgreSQL back")


@pytest.mark.parametrize(
    "fault", [_rabbit_restart, _postgres_restart], ids=["rabbitmq-restart", "postgres-restart"]
)
async def test_worker_recovers_from_a_restart_under_load(
    fault: Callable[[], Awaitable[None]],
    tmp_path: Path,
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
    stopped_workers: list[WorkerProcess],
) -> None:
    (worker,) = _workers(1, tmp_path, database_url, broker_settings)
    stopped_workers.append(worker)
    await worker.start()
    messages = pod_completions(FAULT_N)
    await publish_bulk(rabbit_connection, broker_settings.prefix, KEY, messages)
    await _progress_to(engine, FAULT_N // 4, within=30)
    assert await completions_recorded(engine) < FAULT_N, "the fault came after the work"
    await fault()
    await engine.dispose()  # the test's own pool holds connections the restart closed
    await wait_until(rabbit_connection.connected.is_set, within=30, what="test connection back")
    assert worker.running, "the worker died of the fault"
    await _assert_exactly_once(
        engine, rabbit_connection, broker_settings, [m for m, _ in messages], within=45
    )
    await wait_until(worker.healthy, within=20, what="the worker healthy again")
    assert await worker.terminate() == 0
