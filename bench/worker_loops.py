"""The worker benchmark's two loops (the worker as a child process, the minimal ceiling)
and the ledger state both start from.

Every run consumes messages published beforehand (not timed) and is timed from the end of
its first batch to the end of its last, so start-up is excluded the same way from both.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from attrs import frozen

from bench.figures import cpu_seconds, peak_rss_mb
from bench.worker_workload import PREPULL, Message
from tests.support.worker_process import COMPLETION_TYPES, publish_bulk
from worker.adapters.broker import Broker, BrokerSettings
from worker.adapters.ledger import make_engine, upgrade

__all__ = ["Batching", "Setup", "ceiling_run", "drop_database", "prepare_state", "worker_run"]

ROOT = Path(__file__).resolve().parents[1]
POLL = 0.02
"""Seconds between two progress polls of the worker's log."""
STALL = 120.0
"""A run that makes no progress for this long has failed."""
_PROGRESS = """
SELECT count(*) FILTER (WHERE type = ANY($2::text[])), coalesce(max(position), $1)
FROM ledger.events WHERE position > $1
"""
"""Completions appended after a position, and the new head: a range read of the new events
only (positions become visible in order), never a scan of the log."""
_CEILING_INSERT = """
INSERT INTO received (message_id, node, image, succeeded, finished_at, body)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::timestamptz[],
                     $6::jsonb[])
ON CONFLICT DO NOTHING
"""


@frozen
class Batching:
    """The ``queue:`` settings both loops use."""

    prefetch: int
    batch_size: int
    batch_timeout: float


@frozen
class Setup:
    """Where the runs connect, what the worker child reads, where it logs."""

    database_url: str
    """Maintenance database (``postgresql://``); each run creates its own databases."""
    amqp_url: str
    config: Path
    log: Path


def _url(setup: Setup, name: str, driver: str = "postgresql") -> str:
    base = setup.database_url.rsplit("/", 1)[0]
    return base.replace("postgresql://", f"{driver}://") + f"/{name}"


async def _admin(setup: Setup, statement: str) -> None:
    connection = await asyncpg.connect(setup.database_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def drop_database(setup: Setup, name: str) -> None:
    """Drop a database of the benchmark."""
    await _admin(setup, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _Child:
    """``imageledger run --no-schedule`` on one database and exchange prefix."""

    def __init__(self, setup: Setup, database: str, prefix: str) -> None:
        self.setup, self.database, self.prefix = setup, database, prefix
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, profile: Path | None = None) -> int:
        code = "from worker.cli import run; "
        code += (
            "run()"
            if profile is None
            else f"import cProfile; cProfile.run('run()', {str(profile)!r})"
        )
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        env = {
            **os.environ,
            "PYTHONPATH": path,
            "IMAGELEDGER_CONFIG": str(self.setup.config),
            "IMAGELEDGER_DATABASE_URL": _url(self.setup, self.database, "postgresql+asyncpg"),
            "IMAGELEDGER_AMQP_URL": self.setup.amqp_url,
            "IMAGELEDGER_BROKER_PREFIX": self.prefix,
            "IMAGELEDGER_HOST": "127.0.0.1",
            "IMAGELEDGER_PORT": "0",
        }
        with self.setup.log.open("ab") as sink:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", code, "run", "--no-schedule",
                env=env, stdout=sink, stderr=sink, cwd=ROOT,
            )  # fmt: skip
        return self.process.pid

    def check(self) -> None:
        if self.process is not None and self.process.returncode is not None:
            raise RuntimeError(
                f"the worker exited with {self.process.returncode}; see {self.setup.log}"
            )

    async def stop(self) -> int | None:
        """SIGTERM (a graceful stop), SIGKILL after 30 s; the exit status."""
        if self.process is None or self.process.returncode is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()


async def _topology(setup: Setup, prefix: str) -> Broker:
    broker = Broker(BrokerSettings(url=setup.amqp_url, prefix=prefix))
    await broker.connect()  # the worker's topology, so messages can wait in its queues
    return broker


async def _delete_topology(connection: AbstractRobustConnection, broker: Broker) -> None:
    topology = broker.topology
    await broker.close()
    async with connection.channel() as channel:
        for spec in topology.queues:
            await channel.queue_delete(spec.name)
        for exchange in topology.exchanges:
            await channel.exchange_delete(exchange.name)


async def _release(
    child: _Child, db: asyncpg.Connection, connection: AbstractRobustConnection, broker: Broker
) -> None:
    """Stop the child, close the connections, delete the topology (as far as it goes)."""
    try:
        await child.stop()
        await db.close()
        await _delete_topology(connection, broker)
    finally:
        await connection.close()


_STATE = {
    "nodes": "SELECT count(*) FROM ledger.nodes",
    "eligible_nodes": "SELECT count(*) FROM ledger.nodes WHERE eligible",
    "node_images": "SELECT count(*) FROM ledger.node_images",
    "prepull_targets": "SELECT count(DISTINCT digest) FROM ledger.prepull_targets WHERE pull",
    "prepulls_in_flight": "SELECT count(*) FROM ledger.node_images"
    " WHERE prepull_state = 'requested'",
    "unpublished": "SELECT count(*) FROM ledger.outbox WHERE published_at IS NULL",
    "events": "SELECT coalesce(max(position), 0) FROM ledger.events",
}


async def _state(db: asyncpg.Connection) -> dict[str, int]:
    return {key: int(await db.fetchval(sql)) for key, sql in _STATE.items()}


def _settled(state: dict[str, int], nodes: int) -> bool:
    """The repository read, every inventory folded, a first plan made and relayed."""
    planned = nodes == 0 or state["prepulls_in_flight"] > 0
    return (
        state["prepull_targets"] == PREPULL
        and state["nodes"] == nodes
        and planned
        and state["unpublished"] == 0
    )


async def prepare_state(
    setup: Setup, nodes: int, messages: Sequence[tuple[str, Sequence[Message]]]
) -> tuple[str, dict[str, int]]:
    """A migrated database in which a worker consumed ``messages`` (routing key, messages):
    the template every run of ``nodes`` nodes starts from. Returns its name and contents."""
    name = f"il_bench_state_{nodes}_{uuid.uuid4().hex[:8]}"
    prefix = f"bench-state-{uuid.uuid4().hex[:8]}"
    await _admin(setup, f'CREATE DATABASE "{name}"')
    engine = make_engine(_url(setup, name, "postgresql+asyncpg"))
    await upgrade(engine)
    await engine.dispose()
    broker = await _topology(setup, prefix)
    connection = await aio_pika.connect_robust(setup.amqp_url)
    child = _Child(setup, name, prefix)
    db = await asyncpg.connect(_url(setup, name))
    try:
        for key, batch in messages:
            await publish_bulk(connection, prefix, key, batch, window=1000)
        await child.start()
        deadline, calm = time.monotonic() + 900, 0
        while calm < 2:  # settled on two polls in a row
            await asyncio.sleep(0.25)
            child.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the set-up worker did not settle: {await _state(db)}")
            calm = calm + 1 if _settled(await _state(db), nodes) else 0
        await child.stop()
        return name, await _state(db)
    except BaseException:
        await drop_database(setup, name)
        raise
    finally:
        await _release(child, db, connection, broker)


async def _timed(db: asyncpg.Connection, child: _Child, pid: int, count: int) -> dict[str, Any]:
    """Poll the log until ``count`` completions are recorded; time from the first batch."""
    head = int(await db.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events"))
    done, first, started, cpu_start = 0, 0, 0.0, 0.0
    last = time.perf_counter()
    while done < count:
        await asyncio.sleep(POLL)
        new, head = await db.fetchrow(_PROGRESS, head, list(COMPLETION_TYPES))
        now = time.perf_counter()
        if new and not done:
            first, started, cpu_start = new, now, cpu_seconds(pid)
        done += new
        if new:
            last = now
        elif now - last > STALL:
            raise RuntimeError(f"no completion recorded for {STALL:.0f} s ({done} of {count})")
        child.check()
    seconds, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_start
    return _figures(count - first, seconds, cpu) | {"peak_rss_mb": round(peak_rss_mb(pid), 1)}


def _figures(counted: int, seconds: float, cpu: float) -> dict[str, Any]:
    if counted <= 0 or seconds <= 0:
        raise RuntimeError("every message went in the first batch: publish more messages")
    return {
        "timed_messages": counted,
        "seconds": round(seconds, 3),
        "messages_per_second": round(counted / seconds),
        "cpu_seconds": round(cpu, 3),
        "cpu_us_per_message": round(cpu / counted * 1e6, 1),
    }


async def worker_run(
    setup: Setup, template: str, messages: Sequence[Message], key: str,
    profile: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The whole worker, a child process, on a copy of ``template`` and a fresh topology."""
    name = f"il_bench_worker_{uuid.uuid4().hex[:8]}"
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    await _admin(setup, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    broker = await _topology(setup, prefix)
    connection = await aio_pika.connect_robust(setup.amqp_url)
    child = _Child(setup, name, prefix)
    db = await asyncpg.connect(_url(setup, name))
    try:
        await publish_bulk(connection, prefix, key, messages, window=1000)
        pid = await child.start(profile)
        figures = await _timed(db, child, pid, len(messages))
        return figures | {"exit_code": await child.stop()}
    finally:
        try:
            await _release(child, db, connection, broker)
        finally:
            await drop_database(setup, name)


async def _collect(
    buffer: asyncio.Queue[AbstractIncomingMessage], batching: Batching
) -> list[AbstractIncomingMessage]:
    """The worker's batching: up to ``batch_size`` messages, or what arrived within
    ``batch_timeout`` of the first; waits only when the buffer is empty."""
    batch = [await buffer.get()]
    deadline = time.monotonic() + batching.batch_timeout
    while len(batch) < batching.batch_size:
        try:
            batch.append(buffer.get_nowait())
            continue
        except asyncio.QueueEmpty:
            remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            batch.append(await asyncio.wait_for(buffer.get(), remaining))
        except TimeoutError:
            break
    return batch


def _rows(batch: Sequence[AbstractIncomingMessage]) -> tuple[list[Any], ...]:
    """Parse each body (stdlib JSON, as the worker) and take its fields as columns."""
    ids, nodes, images, succeeded, finished, bodies = [], [], [], [], [], []
    for message in batch:
        data = json.loads(message.body)
        ids.append(message.message_id)
        nodes.append(data["node"])
        images.append(data["image"])
        succeeded.append(data["succeeded"])
        finished.append(datetime.fromisoformat(data["finished_at"]))
        bodies.append(message.body.decode())
    return ids, nodes, images, succeeded, finished, bodies


async def ceiling_run(
    setup: Setup, messages: Sequence[Message], batching: Batching
) -> dict[str, Any]:
    """Consume, parse, one multi-row INSERT per batch, one ack per batch: nothing else."""
    name = f"il_bench_ceiling_{uuid.uuid4().hex[:8]}"
    queue_name = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    await _admin(setup, f'CREATE DATABASE "{name}"')
    db = await asyncpg.connect(_url(setup, name))
    connection = await aio_pika.connect_robust(setup.amqp_url)
    try:
        await db.execute(
            "CREATE TABLE received (message_id text PRIMARY KEY, node text NOT NULL,"
            " image text NOT NULL, succeeded boolean NOT NULL,"
            " finished_at timestamptz NOT NULL, body jsonb NOT NULL)"
        )
        channel = await connection.channel()
        queue = await channel.declare_queue(
            queue_name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await publish_bulk(connection, "", queue_name, messages, window=1000)
        await channel.set_qos(prefetch_count=batching.prefetch)
        buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        tag = await queue.consume(buffer.put)
        received, first, started, cpu_start = 0, 0, 0.0, 0.0
        while received < len(messages):
            batch = await _collect(buffer, batching)
            await db.execute(_CEILING_INSERT, *_rows(batch))
            await batch[-1].ack(multiple=True)
            received += len(batch)
            if not first:
                first, started, cpu_start = received, time.perf_counter(), cpu_seconds()
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_start
        await queue.cancel(tag)
        await channel.queue_delete(queue_name)
        await channel.close()
        return _figures(len(messages) - first, seconds, cpu)
    finally:
        try:
            await connection.close()
            await db.close()
        finally:
            await drop_database(setup, name)
