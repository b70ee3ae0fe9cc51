"""The cluster failover scenario: two workers lose the quorum queues' leader node mid-stream.

A three-node RabbitMQ cluster (``RabbitCluster``) and a database of its own (created,
migrated, dropped); the topology is declared through node 1, so the quorum queues' leaders
start there. Worker 1 (``imageledger run``) is given the three URLs starting with the
leader's node, worker 2 starting with the next one, and the publisher (our ``Broker``,
publisher confirms, unconfirmed messages published again under the same id) starts there
too. Pod completions and node inventories flow at ``rate``; once ``stop_after`` of them
are published the leader's node is stopped (``rabbitmqctl stop``, or SIGKILL of its VM).
Then: every message's effect is in the log exactly (events by causation), no idempotency
key twice, nothing dead-lettered, the projections equal a rebuild from the log; and the
time from the stop to the next fold, the longest pause and when folding resumed.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from attrs import define, frozen

from tests.support.cluster_traffic import (
    Outgoing,
    PacedPublisher,
    Timeline,
    fold_rate,
    pause_figures,
    sample_folds,
    sample_worker,
    traffic,
    worker_counters,
)
from tests.support.rabbit_cluster import ClusterNode, RabbitCluster
from tests.support.worker_process import WorkerProcess, rebuild_matches, write_config
from worker.adapters.broker import Broker, BrokerSettings, DeadLetterQueue
from worker.adapters.ledger import migrate
from worker.adapters.ledger.database import make_engine
from worker.domain.messages import NodeInventory, PodCompleted

__all__ = ["ClusterScenario", "run_cluster_scenario"]

PREFIX = "imageledger"
WORKERS = 2
FAILOVER_LOG = "the next attempt goes to the next node"
"""What a worker logs when its connection is lost and it turns to the next node."""


@frozen
class ClusterScenario:
    """The knobs: how many messages, how fast, when and how the leader's node stops."""

    messages: int = 20_000
    rate: float = 1_000.0
    inventory_every: int = 4
    stop_after: float = 0.5
    kill: bool = False
    admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    fold_within: float = 300.0
    logs: Path | None = None


@define
class _Stop:
    at: float | None = None
    task: asyncio.Task[None] | None = None


async def _admin(url: str, statement: str) -> None:
    db = await asyncpg.connect(url)
    try:
        await db.execute(statement)
    finally:
        await db.close()


async def run_cluster_scenario(scenario: ClusterScenario) -> dict[str, Any]:
    """Run it; the figures and checks as a JSON-ready dict (``passed`` sums up the checks)."""
    name = f"il_cluster_{uuid.uuid4().hex[:10]}"
    raw = scenario.admin_url.rsplit("/", 1)[0] + f"/{name}"
    url = raw.replace("postgresql://", "postgresql+asyncpg://")
    logs = scenario.logs or Path(tempfile.mkdtemp(prefix="imageledger-cluster-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    await _admin(scenario.admin_url, f'CREATE DATABASE "{name}"')
    engine = make_engine(url)
    try:
        await migrate.upgrade(engine)
        began = time.monotonic()
        async with RabbitCluster(3) as cluster:
            result: dict[str, Any] = {"cluster_boot_s": round(time.monotonic() - began, 1)}
            result |= await _with_cluster(scenario, cluster, url, raw, logs)
        result["checks"] |= await _ledger_checks(raw, result.pop("expected"))
        result["checks"]["rebuild_differs"] = await rebuild_matches(engine)
        result["passed"] = _passed(result["checks"])
        return result
    finally:
        await engine.dispose()
        await _admin(scenario.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if scenario.logs is None:
            shutil.rmtree(logs, ignore_errors=True)


async def _with_cluster(
    scenario: ClusterScenario, cluster: RabbitCluster, url: str, raw: str, logs: Path
) -> dict[str, Any]:
    first = Broker(BrokerSettings(url=cluster.urls(0)[0], prefix=PREFIX))
    await first.connect()  # the topology through node 1: the leaders start there
    topology = first.topology
    await first.close()
    keys = (PodCompleted.ROUTING_KEY, NodeInventory.ROUTING_KEY)
    queues = [topology.queue_for(key).name for key in keys]
    leaders = {queue: (await cluster.leader(queue)).name for queue in queues}
    target = cluster.node(leaders[queues[0]])
    at = cluster.nodes.index(target)
    config = write_config(logs / "config.json")
    starts = (at, (at + 1) % len(cluster.nodes))
    workers = [
        WorkerProcess(config, url, ",".join(cluster.urls(s)), PREFIX, logs / f"worker-{i}.log")
        for i, s in enumerate(starts, 1)
    ]
    try:
        await asyncio.gather(*(w.start(healthy_within=60) for w in workers))
        flow = await _flow(scenario, cluster, target, workers, raw, starts[1])
        consumers = await cluster.consumers()
        flow["checks"]["consumers"] = {queue: consumers.get(queue, 0) for queue in queues}
        flow["checks"]["workers_healthy"] = [await w.healthy() for w in workers]
        flow["exit_codes"] = [await w.terminate() for w in workers]
    finally:
        for worker in workers:
            await worker.kill()
    survivor = cluster.urls(starts[1])[0]
    async with DeadLetterQueue(survivor, PREFIX) as dead:
        flow["checks"]["dead_lettered"] = await dead.count()
    flow["checks"]["workers_exit_codes"] = flow.pop("exit_codes")
    flow["stop"] |= {"leaders": leaders, "how": "kill" if scenario.kill else "stop"}
    for i, worker in enumerate(flow["resume"]["workers"]):
        text = (logs / f"worker-{i + 1}.log").read_text(errors="replace")
        worker["first_node"] = cluster.nodes[starts[i]].name
        worker["failovers"] = text.count(FAILOVER_LOG)
    return flow


async def _flow(
    scenario: ClusterScenario,
    cluster: RabbitCluster,
    target: ClusterNode,
    workers: Sequence[WorkerProcess],
    raw: str,
    publish_from: int,
) -> dict[str, Any]:
    messages = traffic(scenario.messages, scenario.inventory_every)
    settings = BrokerSettings(url=",".join(cluster.urls(publish_from)), prefix=PREFIX)
    broker = Broker(settings)
    await broker.connect()
    done = asyncio.Event()
    folds: Timeline = []
    per_worker: list[Timeline] = [[] for _ in workers]
    samplers = [asyncio.create_task(sample_folds(raw, folds, done))] + [
        asyncio.create_task(sample_worker(w.port, line, done))
        for w, line in zip(workers, per_worker, strict=True)
    ]
    stop, stop_at = _Stop(), max(1, int(len(messages) * scenario.stop_after))

    def progress(published: int) -> None:
        if published >= stop_at and stop.task is None:
            stop.at = time.monotonic()
            stop.task = asyncio.create_task(cluster.stop(target, kill=scenario.kill))

    publisher = PacedPublisher(broker, scenario.rate, on_progress=progress)
    began = time.monotonic()
    try:
        await publisher.run(messages)
        published_s = time.monotonic() - began
        assert stop.task is not None
        assert stop.at is not None
        await stop.task
        stop_s = time.monotonic() - stop.at
        folded = await _wait_folded(raw, messages, scenario.fold_within)
        folded_s = time.monotonic() - began
        consumed = await _consumed(workers)
    finally:
        done.set()
        await asyncio.gather(*samplers, return_exceptions=True)
        await broker.close()
    return {
        "messages": len(messages),
        "pod_completions": sum(m.routing_key == PodCompleted.ROUTING_KEY for m in messages),
        "inventories": sum(m.routing_key == NodeInventory.ROUTING_KEY for m in messages),
        "rate": scenario.rate,
        "publish_s": round(published_s, 2),
        "all_folded_s": round(folded_s, 2),
        "publisher": {
            "republished": publisher.republished,
            "longest_confirm_wait_s": round(publisher.longest_wait, 3),
        },
        "stop": {"node": target.name, "after_messages": stop_at, "command_s": round(stop_s, 2)},
        "resume": {
            **pause_figures(folds, stop.at),
            "workers": [pause_figures(line, stop.at) for line in per_worker],
            "events_per_half_second": fold_rate(folds, stop.at),
        },
        "redelivered": int(consumed - len(messages)),
        "checks": {"all_folded": folded},
        "expected": {m.message_id: m.effect for m in messages},
    }


async def _wait_folded(raw: str, messages: Sequence[Outgoing], within: float) -> bool:
    """Wait until the log holds as many events of the traffic's types as it must."""
    wanted = Counter(kind for m in messages for kind in m.effect)
    db = await asyncpg.connect(raw)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            rows = await db.fetch(
                "SELECT type, count(*) FROM ledger.events WHERE type = ANY($1) GROUP BY type",
                list(wanted),
            )
            if Counter({r[0]: r[1] for r in rows}) == wanted:
                return True
            await asyncio.sleep(0.25)
        return False
    finally:
        await db.close()


async def _consumed(workers: Sequence[WorkerProcess]) -> float:
    """Messages the workers handed to their handlers, redeliveries included."""
    async with aiohttp.ClientSession() as http:
        counters = [await worker_counters(http, w.port) for w in workers]
    return sum(c.get("imageledger_messages_consumed_total", 0.0) for c in counters)


async def _ledger_checks(raw: str, expected: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """Each message's effect, exactly: events by causation against what it must append."""
    db = await asyncpg.connect(raw)
    try:
        rows = await db.fetch("SELECT causation, type FROM ledger.events")
        twice = await db.fetchval(
            "SELECT count(*) - count(DISTINCT idempotency_key) FROM ledger.events"
        )
    finally:
        await db.close()
    actual: dict[str, list[str]] = {}
    for causation, kind in rows:
        actual.setdefault(str(causation), []).append(str(kind))
    missing = [m for m in expected if m not in actual]
    wrong = [m for m, e in expected.items() if m in actual and tuple(sorted(actual[m])) != e]
    return {
        "events": len(rows),
        "events_expected": sum(len(e) for e in expected.values()),
        "missing": len(missing),
        "missing_sample": missing[:10],
        "wrong_effect": len(wrong),
        "wrong_sample": wrong[:10],
        "unexpected_causations": len(set(actual) - set(expected)),
        "duplicate_keys": int(twice),
    }


def _passed(checks: dict[str, Any]) -> bool:
    return bool(
        checks["all_folded"]
        and checks["events"] == checks["events_expected"]
        and not checks["missing"]
        and not checks["wrong_effect"]
        and not checks["unexpected_causations"]
        and not checks["duplicate_keys"]
        and not checks["dead_lettered"]
        and not checks["rebuild_differs"]
        and all(code == 0 for code in checks["workers_exit_codes"])
        and all(checks["workers_healthy"])
        and all(count == WORKERS for count in checks["consumers"].values())
    )


def environment() -> dict[str, Any]:
    """Where and when the figures were taken."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "run_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
    }
