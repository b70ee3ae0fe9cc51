"""Benchmark the worker: pod completions through ``imageledger run`` against a minimal loop.

Run from the repository root, with PostgreSQL on 127.0.0.1:5432 (trust auth) and RabbitMQ
on 127.0.0.1:5672 (guest/guest)::

    python bench/worker.py --out bench/results/worker.json [--messages 100000]

Both runs consume the same N ``prepull.pod_completed`` bodies, published beforehand (not
timed) to a durable quorum queue of the same broker, and write to the same database server:

1. worker: an ``imageledger run --no-schedule`` child process (production batching: prefetch
   200, batches of 100 or 50 ms) consumes, validates, appends ``prepull.succeeded`` /
   ``prepull.failed`` with the inline fold, plans, commits and acks. Timed from the first
   recorded completion to the last (start-up excluded); peak RSS from ``/proc/<pid>/status``
   ``VmHWM`` of the child.
2. ceiling: in this process, the same prefetch and batch size; each batch is one multi-row
   ``INSERT ... SELECT FROM unnest`` of (message id, body) into a table with a primary key,
   then one ``ack(multiple=True)``. No validation, no log, no fold, no planning.

``--profile PATH`` runs the worker child under cProfile (slower; for finding where time goes).

Targets: worker throughput at least 0.6 of the ceiling; worker peak RSS under 250 MB.
See docs/benchmarks.md ("Worker").
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

# Run as ``python bench/worker.py``, this file's directory comes first on the path, where
# ``worker`` would name this very script rather than the package; the repository root
# takes its place (for the test harness's publisher).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.worker_process import publish_bulk  # noqa: E402
from worker.adapters.broker.connection import Broker, BrokerSettings  # noqa: E402
from worker.adapters.ledger import migrate  # noqa: E402
from worker.adapters.ledger.database import make_engine  # noqa: E402
from worker.config import QueueConfig  # noqa: E402
from worker.converter import encode_message  # noqa: E402
from worker.domain.messages import PodCompleted  # noqa: E402
from worker.domain.references import DockerReference  # noqa: E402

TARGETS = {"ratio": 0.6, "peak_rss_mb": 250}
QUEUE = QueueConfig()
"""Production batching (the ``queue:`` defaults); both loops use the same."""
KEY = "prepull.pod_completed"
_COMPLETIONS = (
    "SELECT count(*) FROM ledger.events WHERE type IN ('prepull.succeeded', 'prepull.failed')"
)
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
"""An hour ago: message times may not be ahead of the worker's clock (queue.maxClockSkew)."""


def _url(base: str, database: str, driver: str = "postgresql") -> str:
    return base.rsplit("/", 1)[0].replace("postgresql://", f"{driver}://") + f"/{database}"


async def _admin(base: str, statement: str) -> None:
    connection = await asyncpg.connect(base)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def messages(count: int) -> list[tuple[str, bytes]]:
    """Pod completions over 500 nodes and 100 images; every 20th fails."""
    out: list[tuple[str, bytes]] = []
    for i in range(count):
        digest = "sha256:" + hashlib.sha256(f"image-{i % 100}".encode()).hexdigest()
        failed = i % 20 == 19
        message = PodCompleted(
            node=f"node-{i % 499:04d}",
            image=DockerReference("reg.test", "lsstsqre/sciplat-lab", f"w_{i % 100}", digest),
            pod=f"prepull-{i}",
            succeeded=not failed,
            finished_at=T0 + timedelta(milliseconds=i),
            reason="ErrImagePull: bench" if failed else None,
        )
        out.append((f"bench-{i:07d}", encode_message(message)))
    return out


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _worker_code(profile: Path | None) -> str:
    if profile is None:
        return "from worker.cli import run; run()"
    return f"import cProfile; from worker.cli import run; cProfile.run('run()', {str(profile)!r})"


async def bench_worker(
    base: str,
    amqp: str,
    batch: list[tuple[str, bytes]],
    settings: QueueConfig,
    log_path: Path,
    profile: Path | None = None,
) -> dict[str, Any]:
    """The whole worker as a child process on a fresh database and exchange prefix."""
    name = f"il_bench_worker_{uuid.uuid4().hex[:8]}"
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    await _admin(base, f'CREATE DATABASE "{name}"')
    engine = make_engine(_url(base, name, "postgresql+asyncpg"))
    await migrate.upgrade(engine)
    await engine.dispose()
    broker = Broker(BrokerSettings(url=amqp, prefix=prefix))
    await broker.connect()  # the worker's topology, so the backlog can wait in its queue
    connection = await aio_pika.connect_robust(amqp)
    process: asyncio.subprocess.Process | None = None
    db = await asyncpg.connect(_url(base, name))
    try:
        await publish_bulk(connection, prefix, KEY, batch, window=1000)
        config = log_path.with_suffix(".config.json")
        source = {"type": "docker", "registry": "127.0.0.1:9", "repository": "a/b"}
        queue = {"prefetch": settings.prefetch, "batchSize": settings.batch_size,
                 "batchTimeout": f"{settings.batch_timeout.total_seconds()}s"}  # fmt: skip
        config.write_text(json.dumps({"images": {"source": source}, "queue": queue}))
        env = {
            **os.environ,
            "IMAGELEDGER_CONFIG": str(config),
            "IMAGELEDGER_DATABASE_URL": _url(base, name, "postgresql+asyncpg"),
            "IMAGELEDGER_AMQP_URL": amqp,
            "IMAGELEDGER_BROKER_PREFIX": prefix,
            "IMAGELEDGER_HOST": "127.0.0.1",
            "IMAGELEDGER_PORT": "0",
        }
        with log_path.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _worker_code(profile),
                "run",
                "--no-schedule",
                env=env,
                stdout=sink,
                stderr=sink,
            )
        first, started, cpu_start = 0, 0.0, 0.0
        while True:
            done = int(await db.fetchval(_COMPLETIONS))
            if done and not started:
                first, started = done, time.perf_counter()
                cpu_start = _cpu_seconds(process.pid)
            if done >= len(batch):
                break
            if process.returncode is not None:
                raise RuntimeError(f"the worker exited with {process.returncode}; see {log_path}")
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds(process.pid) - cpu_start
        rss = _peak_rss_mb(process.pid)
        process.terminate()
        code = await asyncio.wait_for(process.wait(), 30)
        counted = len(batch) - first
        return {
            "messages": len(batch),
            "seconds": round(seconds, 2),
            "messages_per_second": round(counted / seconds),
            "peak_rss_mb": round(rss, 1),
            "cpu_seconds": round(cpu, 2),
            "exit_code": code,
            "events": int(await db.fetchval("SELECT count(*) FROM ledger.events")),
        }
    finally:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        await db.close()
        await _delete_topology(connection, broker)
        await connection.close()
        await _admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _delete_topology(connection: AbstractRobustConnection, broker: Broker) -> None:
    topology = broker.topology
    await broker.close()
    async with connection.channel() as channel:
        for spec in topology.queues:
            await channel.queue_delete(spec.name)
        for exchange in topology.exchanges:
            await channel.exchange_delete(exchange.name)


async def bench_ceiling(
    base: str, amqp: str, batch: list[tuple[str, bytes]], settings: QueueConfig
) -> dict[str, Any]:
    """Consume, one multi-row INSERT per batch, ack multiple: nothing else."""
    name = f"il_bench_ceiling_{uuid.uuid4().hex[:8]}"
    queue_name = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    await _admin(base, f'CREATE DATABASE "{name}"')
    db = await asyncpg.connect(_url(base, name))
    connection = await aio_pika.connect_robust(amqp)
    try:
        await db.execute("CREATE TABLE received (message_id text PRIMARY KEY, body jsonb)")
        async with connection.channel() as channel:
            await channel.declare_queue(
                queue_name, durable=True, arguments={"x-queue-type": "quorum"}
            )
        await publish_bulk(connection, "", queue_name, batch, window=1000)
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=settings.prefetch)
        queue = await channel.declare_queue(queue_name, passive=True)
        buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        tag = await queue.consume(buffer.put)
        received = 0
        started, cpu_start = 0.0, time.process_time()
        while received < len(batch):
            items = [await buffer.get()]
            if not started:
                started, cpu_start = time.perf_counter(), time.process_time()
            deadline = time.monotonic() + settings.batch_timeout.total_seconds()
            while len(items) < settings.batch_size:
                try:
                    items.append(await asyncio.wait_for(buffer.get(), deadline - time.monotonic()))
                except TimeoutError:
                    break
            await db.execute(
                "INSERT INTO received SELECT * FROM unnest($1::text[], $2::jsonb[])"
                " ON CONFLICT DO NOTHING",
                [m.message_id for m in items],
                [m.body.decode() for m in items],
            )
            await items[-1].ack(multiple=True)
            received += len(items)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_start
        await queue.cancel(tag)
        await channel.queue_delete(queue_name)
        await channel.close()
        return {
            "messages": len(batch),
            "seconds": round(seconds, 2),
            "messages_per_second": round(len(batch) / seconds),
            "cpu_seconds": round(cpu, 2),
        }
    finally:
        await connection.close()
        await db.close()
        await _admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run both loops on the same messages, ceiling first, and compare."""
    batch = messages(args.messages)
    settings = QueueConfig(batch_size=args.batch_size, prefetch=args.prefetch)
    ceiling = await bench_ceiling(args.database_url, args.amqp_url, batch, settings)
    print(json.dumps({"ceiling": ceiling}), flush=True)
    worker = await bench_worker(
        args.database_url, args.amqp_url, batch, settings, Path(args.worker_log), args.profile
    )
    print(json.dumps({"worker": worker}), flush=True)
    ratio = worker["messages_per_second"] / ceiling["messages_per_second"]
    return {
        "messages": args.messages,
        "worker": worker,
        "ceiling": ceiling,
        "ratio": round(ratio, 3),
        "targets": TARGETS,
        "ratio_pass": ratio >= TARGETS["ratio"],
        "peak_rss_pass": worker["peak_rss_mb"] < TARGETS["peak_rss_mb"],
        "settings": {
            "prefetch": settings.prefetch,
            "batch_size": settings.batch_size,
            "batch_timeout_s": settings.batch_timeout.total_seconds(),
        },
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "run_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
    }


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Write the figures as JSON here.")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--worker-log", default="/tmp/imageledger-bench-worker.log")
    parser.add_argument("--profile", type=Path, help="Run the worker under cProfile, stats here.")
    parser.add_argument("--batch-size", type=int, default=QUEUE.batch_size, help="Both loops.")
    parser.add_argument("--prefetch", type=int, default=QUEUE.prefetch, help="Both loops.")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    result = asyncio.run(main(arguments))
    if arguments.out:
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        arguments.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"worker {result['worker']['messages_per_second']:,} msg/s, ceiling "
        f"{result['ceiling']['messages_per_second']:,} msg/s, ratio {result['ratio']:.2f} "
        f"(target >= {TARGETS['ratio']}); worker peak RSS {result['worker']['peak_rss_mb']} MB "
        f"(target < {TARGETS['peak_rss_mb']})"
    )
