"""`imageledger run` as a subprocess, a bulk pod-completion publisher, and log/rebuild checks."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.child import ChildProcess
from tests.support.cli import ENTRY
from tests.support.net import free_port
from tests.support.rabbit import wait_until
from worker.adapters.ledger.rebuild import rebuild
from worker.adapters.ledger.schema import PROJECTION_TABLES
from worker.converter import encode_message
from worker.domain.messages import PodCompleted
from worker.domain.references import DockerReference

__all__ = [
    "COMPLETION_TYPES",
    "WorkerProcess",
    "completion_counts",
    "completions_recorded",
    "pod_completions",
    "projections",
    "publish_bulk",
    "rebuild_matches",
    "write_config",
]

COMPLETION_TYPES = ("prepull.succeeded", "prepull.failed")
"""The event types a ``prepull.pod_completed`` message appends (one per message)."""

REPO = "lsstsqre/sciplat-lab"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
"""An hour ago: message times may not be ahead of the worker's clock (queue.maxClockSkew)."""


def write_config(path: Path) -> Path:
    """A worker configuration whose registry is never contacted (refreshes not scheduled)."""
    source = {"type": "docker", "registry": "127.0.0.1:9", "repository": REPO, "insecure": True}
    path.write_text(json.dumps({"images": {"source": source}}))
    return path


class WorkerProcess(ChildProcess):
    """One ``imageledger run --no-schedule`` child with its own port and log file."""

    def __init__(
        self, config: Path, database_url: str, amqp_url: str, prefix: str, log: Path
    ) -> None:
        super().__init__()
        self._config, self._database_url = config, database_url
        self._amqp_url, self._prefix, self._log = amqp_url, prefix, log
        self.port = 0
        self.starts = 0

    async def start(self, *, healthy_within: float = 30.0) -> None:
        """Start the child and wait until ``/healthz`` answers 200."""
        self.port = free_port()
        env = {
            **os.environ,
            "IMAGELEDGER_CONFIG": str(self._config),
            "IMAGELEDGER_DATABASE_URL": self._database_url,
            "IMAGELEDGER_AMQP_URL": self._amqp_url,
            "IMAGELEDGER_BROKER_PREFIX": self._prefix,
            "IMAGELEDGER_HOST": "127.0.0.1",
            "IMAGELEDGER_PORT": str(self.port),
        }
        with self._log.open("ab") as sink:
            self._process = await asyncio.create_subprocess_exec(
                *ENTRY,
                "run",
                "--no-schedule",
                env=env,
                stdout=sink,
                stderr=sink,
            )
        self.starts += 1
        await wait_until(self.healthy, within=healthy_within, what=f"worker {self.pid} healthy")

    async def healthy(self) -> bool:
        """Whether ``/healthz`` answers 200 (the database and the broker are reachable)."""
        if not self.running:
            raise AssertionError(f"worker exited with {self.returncode}; see {self._log}")
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{self.port}/healthz") as response,
            ):
                return response.status == 200
        except aiohttp.ClientError:
            return False

    def peak_rss_mb(self) -> float:
        """The child's peak resident set (``VmHWM``) in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM in /proc status")


def pod_completions(
    count: int, *, nodes: int = 97, digests: int = 50, fail_every: int = 7
) -> list[tuple[str, bytes]]:
    """``count`` distinct ``prepull.pod_completed`` messages as (message id, body); every
    ``fail_every``-th one is a failure. Node and image cycle with coprime periods, so each
    pair sees several completions, successes and failures mixed (order matters to the fold)."""
    out: list[tuple[str, bytes]] = []
    for i in range(count):
        digest = "sha256:" + hashlib.sha256(f"image-{i % digests}".encode()).hexdigest()
        failed = fail_every > 0 and i % fail_every == fail_every - 1
        message = PodCompleted(
            node=f"node-{i % nodes:04d}",
            image=DockerReference(
                registry="reg.test", repository=REPO, tag=f"w_{i % digests}", digest=digest
            ),
            pod=f"prepull-{i}",
            succeeded=not failed,
            finished_at=T0 + timedelta(milliseconds=i),
            reason="ErrImagePull: simulated" if failed else None,
        )
        out.append((f"pod-{i:06d}", encode_message(message)))
    return out


async def publish_bulk(
    connection: AbstractRobustConnection,
    exchange: str,
    routing_key: str,
    messages: Sequence[tuple[str, bytes]],
    *,
    window: int = 500,
) -> None:
    """Publish persistent messages with confirms, ``window`` outstanding at a time
    (``exchange`` "": the default exchange, ``routing_key`` naming a queue)."""
    async with connection.channel(publisher_confirms=True) as channel:
        target = await channel.get_exchange(exchange) if exchange else channel.default_exchange
        for start in range(0, len(messages), window):
            await asyncio.gather(
                *(
                    target.publish(
                        aio_pika.Message(
                            body,
                            message_id=message_id,
                            content_type="application/json",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key,
                    )
                    for message_id, body in messages[start : start + window]
                )
            )


async def completion_counts(engine: AsyncEngine) -> dict[str, int]:
    """Completion events per causing message id."""
    sql = text(
        "SELECT causation, count(*) FROM ledger.events WHERE type = ANY(:types) GROUP BY causation"
    )
    async with engine.connect() as conn:
        rows = await conn.execute(sql, {"types": list(COMPLETION_TYPES)})
        return {str(r[0]): int(r[1]) for r in rows}


async def completions_recorded(engine: AsyncEngine) -> int:
    """How many completion events the log holds."""
    sql = text("SELECT count(*) FROM ledger.events WHERE type = ANY(:types)")
    async with engine.connect() as conn:
        return int((await conn.execute(sql, {"types": list(COMPLETION_TYPES)})).scalar_one())


async def projections(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table's rows, sorted, as plain tuples."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in PROJECTION_TABLES:
            rows = await conn.execute(text(f"SELECT * FROM ledger.{table.name}"))
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


async def rebuild_matches(engine: AsyncEngine) -> list[str]:
    """Rebuild the projections from the log; returns the tables whose rows differ from the
    live ones (empty: the live projections equal a rebuild)."""
    live = await projections(engine)
    await rebuild(engine)
    rebuilt = await projections(engine)
    return [name for name in live if live[name] != rebuilt[name]]
