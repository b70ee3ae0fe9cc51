"""The worker end to end: real registry, RabbitMQ and PostgreSQL, a stand-in pod launcher."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.cli import ENTRY
from tests.support.launcher import launcher
from tests.support.rabbit import drain, publish_raw, wait_until
from tests.support.registry import RunningRegistry
from worker import factory
from worker.adapters.broker.connection import REASON_HEADER, BrokerSettings
from worker.config import Config
from worker.consumer import Worker
from worker.converter import parse_config
from worker.web import serve

REPO = "lsstsqre/sciplat-lab"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
"""An hour ago: message times may not be ahead of the worker's clock (queue.maxClockSkew)."""


def make_config(registry: str) -> Config:
    source = {"type": "docker", "registry": registry, "repository": REPO, "insecure": True}
    return parse_config(
        {
            "images": {"source": source, "numDailies": 1},
            "prepull": {"backoff": 0.2, "maxBackoff": 1, "planInterval": 0.3},
        }
    )


@asynccontextmanager
async def running_worker(
    config: Config, settings: BrokerSettings, url: str
) -> AsyncIterator[factory.Runtime]:
    async with factory.runtime(config, settings, url) as runtime:
        worker = Worker(runtime, schedule_refreshes=False)
        await worker.start()
        try:
            yield runtime
        finally:
            await worker.stop()


def inventory(node: str, digests: list[str], *, taints: Any = (), at: datetime = T0) -> bytes:
    images = [{"names": [f"reg.test/{REPO}@{d}"], "sizeBytes": 1000} for d in digests]
    body = {
        "node": node,
        "observed_at": at.isoformat(),
        "labels": {"kubernetes.io/hostname": node},
        "taints": list(taints),
        "images": images,
    }
    return json.dumps(body).encode()


async def rows(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(text(sql)))


async def converged(engine: AsyncEngine) -> bool:
    status = await rows(engine, "SELECT prepulled, eligible_nodes FROM dashboard.prepull_status")
    return bool(status) and all(r.prepulled and r.eligible_nodes == 2 for r in status)


async def push_repository(registry: RunningRegistry, session: aiohttp.ClientSession) -> list[str]:
    pusher = registry.pusher(session)
    weekly = await pusher.push_image(REPO, ["w_2077_43", "recommended"], variant="w43")
    older = await pusher.push_image(REPO, ["w_2077_42"], variant="w42")
    daily = await pusher.push_image(REPO, ["d_2077_10_23"], variant="d", kind="docker")
    return [weekly, older, daily]


async def test_prepulls_converge_and_complete_once_per_image(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    weekly, older, daily = await push_repository(registry, registry_session)
    exchange = broker_settings.prefix
    config = make_config(registry.host)
    async with (
        running_worker(config, broker_settings, database_url) as runtime,
        launcher(rabbit_connection, exchange, {("node-b", weekly)}) as stand_in,
        serve(runtime, "127.0.0.1", 0) as port,
    ):
        taint = {"key": "maintenance", "effect": "NoSchedule"}
        for name, body in [
            ("node-a", inventory("node-a", [older])),
            ("node-b", inventory("node-b", [])),
            ("node-c", inventory("node-c", [], taints=[taint])),
        ]:
            await publish_raw(rabbit_connection, exchange, "node.inventory", body, message_id=name)
        await wait_until(lambda: _nodes(engine, 3), what="3 nodes")
        await publish_raw(rabbit_connection, exchange, "refresh.request", b"{}", message_id="r1")

        await wait_until(lambda: converged(engine), within=30, what="every target prepulled")
        await wait_until(lambda: len(stand_in.complete) == 3, within=10, what="3 completes")

        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
                assert (await response.json())["database"] == "ok"
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                metrics = await response.text()
        assert 'imageledger_events_appended_total{type="prepull.succeeded"} 5.0' in metrics
        assert "imageledger_outbox_backlog" in metrics

        # a redelivered pod completion adds nothing
        head = await _count(engine, "SELECT max(position) FROM ledger.events")
        answer_id, body = stand_in.answers[0]
        consumed = _consumed(runtime, "pod_completed")
        await stand_in.publish(answer_id, body)
        await wait_until(lambda: _consumed(runtime, "pod_completed") > consumed, what="redelivery")
        await asyncio.sleep(0.5)  # planning ticks: nothing more to do
        assert await _count(engine, "SELECT max(position) FROM ledger.events") == head

    requested = [(r.node, r.digest, r.attempt) for _, r in stand_in.requests]
    assert sorted(requested) == sorted(
        [
            ("node-a", weekly, 1),
            ("node-a", daily, 1),
            ("node-b", weekly, 1),
            ("node-b", weekly, 2),
            ("node-b", older, 1),
            ("node-b", daily, 1),
        ]
    )
    assert requested[:2] == [("node-a", weekly, 1), ("node-b", weekly, 1)]  # recommended first
    assert len({message_id for message_id, _ in stand_in.requests}) == 6
    assert sorted(done.digest for _, done in stand_in.complete) == sorted([weekly, older, daily])
    assert all(done.nodes == ("node-a", "node-b") for _, done in stand_in.complete)
    types = dict(await rows(engine, "SELECT type, count(*) FROM ledger.events GROUP BY type"))
    assert types["prepull.failed"] == 1
    assert types["prepull.succeeded"] == 5
    status = await rows(engine, "SELECT node, eligible, comment FROM ledger.nodes ORDER BY node")
    assert [(r.node, r.eligible) for r in status] == [
        ("node-a", True),
        ("node-b", True),
        ("node-c", False),
    ]
    assert status[2].comment == "Node is tainted (NoSchedule, maintenance)"


async def test_poison_messages_are_dead_lettered_while_valid_ones_flow(
    registry: RunningRegistry,
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    exchange = broker_settings.prefix
    poison = [
        ("node.inventory", b"{not json"),
        (
            "node.inventory",
            json.dumps({"node": "x", "observed_at": "2077-01-01T00:00:00"}).encode(),
        ),
        ("prepull.pod_completed", json.dumps({"node": "n", "image": "reg.test/a/b:t"}).encode()),
    ]
    async with running_worker(make_config(registry.host), broker_settings, database_url):
        for i, (key, body) in enumerate(poison):
            await publish_raw(rabbit_connection, exchange, key, body, message_id=f"bad-{i}")
            valid = inventory(f"node-{i}", [], at=T0 + timedelta(seconds=i))
            await publish_raw(rabbit_connection, exchange, "node.inventory", valid)
        await wait_until(lambda: _nodes(engine, 3), what="the valid nodes")
        dead = await drain(rabbit_connection, f"{exchange}.dead", 3)
    reasons = {m.message_id: str((m.headers or {})[REASON_HEADER]) for m in dead}
    assert "malformed JSON" in reasons["bad-0"]
    assert "no time zone" in reasons["bad-1"]
    assert "$." in reasons["bad-2"] or "missing" in reasons["bad-2"]


async def _count(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one() or 0)


async def _nodes(engine: AsyncEngine, expected: int) -> bool:
    return await _count(engine, "SELECT count(*) FROM ledger.nodes") == expected


def _consumed(runtime: factory.Runtime, queue: str) -> float:
    value = runtime.metrics.registry.get_sample_value(
        "imageledger_messages_consumed_total", {"queue": queue}
    )
    return value or 0.0


async def test_imageledger_run_serves_health_and_the_spawner_api_and_exits_0_on_sigterm(
    registry: RunningRegistry,
    database_url: str,
    broker_settings: BrokerSettings,
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.yaml"
    source = {"type": "docker", "registry": registry.host, "repository": REPO, "insecure": True}
    config.write_text(json.dumps({"images": {"source": source}}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "IMAGELEDGER_CONFIG": str(config),
        "IMAGELEDGER_DATABASE_URL": database_url,
        "IMAGELEDGER_AMQP_URL": broker_settings.url,
        "IMAGELEDGER_BROKER_PREFIX": broker_settings.prefix,
        "IMAGELEDGER_PORT": str(port),
        "IMAGELEDGER_HOST": "127.0.0.1",
    }
    process = await asyncio.create_subprocess_exec(*ENTRY, "run", env=env)
    try:
        async with aiohttp.ClientSession() as http:

            async def healthy() -> bool:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(healthy, within=20, what="/healthz 200")
            base = f"http://127.0.0.1:{port}/spawner/v1"
            async with http.get(f"{base}/images") as response:
                assert response.status == 200
                assert "all" in await response.json()
            async with http.get(f"{base}/resolve", params={"tag": "no_such_tag"}) as response:
                assert response.status == 400
                assert (await response.json())["detail"][0]["type"] == "unknown_image"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
