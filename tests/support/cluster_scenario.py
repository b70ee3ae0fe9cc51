"""The cluster failover scenario: two workers lose the quorum queues' leader node mid-stream.

A three-node RabbitMQ cluster (``RabbitCluster``) and a database of its own (created,
migrated, dropped); the topology is declared through node 1, so the quorum queues' leaders
start there. Worker 1 (``imageledger run``) is given the three URLs starting with the
leader's node, worker 2 starting with the next one, and the publisher (our ``Broker``,
publisher confirms, unconfirmed messages published again under the same id) starts there
too. Pod completions and node inventories flow at ``rate``; once ``stop_after`` of them
are published the leader's node is stopped (``rabbitmqctl stop``, or SIGKILL of its VM).
Then: every message's effect is in the log exactly (events by causation), no idempotency
key twice, nothing dead-lettered, the projections equal a rebuild from the log, both
workers healthy and consuming every work queue; and how folding went on: the next fold
after the stop, the longest pause, when the work in flight at the stop was all folded,
publish-to-fold lags, and when the worker that lost its node was connected and folding
again.
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
    failover_times,
    first_fold_after,
    fold_rate,
    lag_figures,
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

__all__ = ["ClusterScenario", "environment", "run_cluster_scenario"]

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
    after: int
    at: float = 0.0
    wall: float = 0.0
    task: asyncio.Task[float] | None = None


@define
class _Run:
    """What the flow left behind: the raw material of the figures."""

    messages: list[Outgoing]
    publisher: PacedPublisher
    stop: _Stop
    stop_command_s: float
    published_s: float
    folded_s: float
    all_folded: bool
    consumed: float
    folds: Timeline
    per_worker: list[Timeline]
    database_outages: list[float]


async def _admin(url: str, statement: str) -> None:
    db = await asyncpg.connect(url)
    try:
        await db.execute(statement)
    finally:
        await db.close()


async def _drop(admin_url: str, name: str) -> None:
    """Drop the database, waiting up to a minute for a PostgreSQL that is restarting (other
    test suites on this machine stop it on purpose)."""
    for attempt in range(30):
        try:
            await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (OSError, asyncpg.CannotConnectNowError):
            if attempt == 29:
                raise
            await asyncio.sleep(2)


async def run_cluster_scenario(scenario: ClusterScenario) -> dict[str, Any]:
    """Run it; the figures and checks as a JSON-ready dict (``passed`` sums up the checks).
    The database, the cluster and the temporary folders go, whatever happens."""
    logs = scenario.logs or Path(tempfile.mkdtemp(prefix="imageledger-cluster-logs-"))
    try:
        logs.mkdir(parents=True, exist_ok=True)
        name = f"il_cluster_{uuid.uuid4().hex[:10]}"
        await _admin(scenario.admin_url, f'CREATE DATABASE "{name}"')
        try:
            return await _in_database(scenario, name, logs)
        finally:
            await _drop(scenario.admin_url, name)
    finally:
        if scenario.logs is None:
            shutil.rmtree(logs, ignore_errors=True)


async def _in_database(scenario: ClusterScenario, name: str, logs: Path) -> dict[str, Any]:
    raw = scenario.admin_url.rsplit("/", 1)[0] + f"/{name}"
    url = raw.replace("postgresql://", "postgresql+asyncpg://")
    engine = make_engine(url)
    try:
        await migrate.upgrade(engine)
        began = time.monotonic()
        async with RabbitCluster(3) as cluster:
            boot_s = time.monotonic() - began
            leaders, starts = await _leaders(cluster)
            target = cluster.node(leaders[f"{PREFIX}.pod_completed"])
            run, checks = await _with_workers(scenario, cluster, target, starts, url, raw, logs)
            firsts = [cluster.nodes[s].name for s in starts]
        expected = {m.message_id: m.effect for m in run.messages}
        ledger, folded_at = await _ledger_checks(raw, expected)
        checks |= ledger | {"rebuild_differs": await rebuild_matches(engine)}
    finally:
        await engine.dispose()
    result = _figures(run, folded_at, [logs / f"worker-{i}.log" for i in (1, 2)], firsts)
    result["stop"] |= {"node": target.name, "how": "kill" if scenario.kill else "stop"}
    result["stop"]["leaders"] = leaders
    passed = _passed(checks)
    return {"cluster_boot_s": round(boot_s, 1), **result, "checks": checks, "passed": passed}


async def _leaders(cluster: RabbitCluster) -> tuple[dict[str, str], tuple[int, int]]:
    """Declare the topology through node 1 (the quorum queues' leaders start there); the
    leader of each work queue, and where workers 1 and 2 start: the pod-completion queue's
    leader, and the node after it."""
    first = Broker(BrokerSettings(url=cluster.urls(0)[0], prefix=PREFIX))
    await first.connect()
    topology = first.topology
    await first.close()
    keys = (PodCompleted.ROUTING_KEY, NodeInventory.ROUTING_KEY)
    queues = [topology.queue_for(key).name for key in keys]
    leaders = {queue: (await cluster.leader(queue)).name for queue in queues}
    at = cluster.nodes.index(cluster.node(leaders[queues[0]]))
    return leaders, (at, (at + 1) % len(cluster.nodes))


async def _with_workers(
    scenario: ClusterScenario,
    cluster: RabbitCluster,
    target: ClusterNode,
    starts: tuple[int, int],
    url: str,
    raw: str,
    logs: Path,
) -> tuple[_Run, dict[str, Any]]:
    """Start the workers, run the flow, then check them and the dead-letter queue."""
    config = write_config(logs / "config.json")
    workers = [
        WorkerProcess(config, url, ",".join(cluster.urls(s)), PREFIX, logs / f"worker-{i}.log")
        for i, s in enumerate(starts, 1)
    ]
    try:
        await asyncio.gather(*(w.start(healthy_within=60) for w in workers))
        run = await _flow(scenario, cluster, target, workers, raw, starts[1])
        consumers = await cluster.consumers()
        queues = (f"{PREFIX}.pod_completed", f"{PREFIX}.node_inventory")
        checks: dict[str, Any] = {
            "all_folded": run.all_folded,
            "consumers": {queue: consumers.get(queue, 0) for queue in queues},
            "workers_healthy": [await w.healthy() for w in workers],
            "workers_exit_codes": [await w.terminate() for w in workers],
        }
    finally:
        for worker in workers:
            await worker.kill()
    async with DeadLetterQueue(cluster.urls(starts[1])[0], PREFIX) as dead:
        checks["dead_lettered"] = await dead.count()
    return run, checks


async def _flow(
    scenario: ClusterScenario,
    cluster: RabbitCluster,
    target: ClusterNode,
    workers: Sequence[WorkerProcess],
    raw: str,
    publish_from: int,
) -> _Run:
    """Publish at the paced rate, stop the node on the way, wait until all is folded."""
    messages = traffic(scenario.messages, scenario.inventory_every)
    broker = Broker(BrokerSettings(url=",".join(cluster.urls(publish_from)), prefix=PREFIX))
    await broker.connect()
    done = asyncio.Event()
    folds: Timeline = []
    outages: list[float] = []
    per_worker: list[Timeline] = [[] for _ in workers]
    samplers = [asyncio.create_task(sample_folds(raw, folds, done, outages))] + [
        asyncio.create_task(sample_worker(w.port, line, done))
        for w, line in zip(workers, per_worker, strict=True)
    ]
    stop = _Stop(after=max(1, int(len(messages) * scenario.stop_after)))

    async def stop_node() -> float:
        await cluster.stop(target, kill=scenario.kill)
        return time.monotonic() - stop.at

    def progress(published: int) -> None:
        if published >= stop.after and stop.task is None:
            stop.at, stop.wall = time.monotonic(), time.time()
            stop.task = asyncio.create_task(stop_node())

    publisher = PacedPublisher(broker, scenario.rate, on_progress=progress)
    began = time.monotonic()
    try:
        await publisher.run(messages)
        published_s = time.monotonic() - began
        assert stop.task is not None
        stop_command_s = await stop.task
        folded = await _wait_folded(raw, messages, scenario.fold_within)
        folded_s = time.monotonic() - began
        consumed = await _consumed(workers)
    finally:
        done.set()
        await asyncio.gather(*samplers, return_exceptions=True)
        await broker.close()
    return _Run(
        messages, publisher, stop, stop_command_s, published_s, folded_s, folded, consumed,
        folds, per_worker, outages,
    )  # fmt: skip


def _figures(
    run: _Run, folded_at: dict[str, float], logs: Sequence[Path], firsts: Sequence[str]
) -> dict[str, Any]:
    """The figures of a run, JSON-ready; times in seconds from the stop."""
    stop = run.stop
    workers = []
    for log, first, line in zip(logs, firsts, run.per_worker, strict=True):
        text = log.read_text(errors="replace")
        lost, back = failover_times(text, stop.wall)
        folding = None if back is None else first_fold_after(line, stop.at + back - stop.wall)
        workers.append({
            "first_node": first,
            "failovers": text.count(FAILOVER_LOG),
            "lost_s": None if lost is None else round(lost - stop.wall, 3),
            "reconnected_s": None if back is None else round(back - stop.wall, 3),
            "folding_again_s": None if folding is None else round(folding - stop.at, 3),
            **pause_figures(line, stop.at),
        })  # fmt: skip
    messages = run.messages
    return {
        "messages": len(messages),
        "pod_completions": sum(m.routing_key == PodCompleted.ROUTING_KEY for m in messages),
        "inventories": sum(m.routing_key == NodeInventory.ROUTING_KEY for m in messages),
        "rate": run.publisher.rate,
        "publish_s": round(run.published_s, 2),
        "all_folded_s": round(run.folded_s, 2),
        "publisher": {
            "republished": run.publisher.republished,
            "longest_confirm_wait_s": round(run.publisher.longest_wait, 3),
        },
        "stop": {"after_messages": stop.after, "command_s": round(run.stop_command_s, 2)},
        "resume": {
            **pause_figures(run.folds, stop.at),
            **lag_figures(run.publisher.sent, folded_at, stop.wall),
            "workers": workers,
            "events_per_half_second": fold_rate(run.folds, stop.at),
        },
        "redelivered": int(run.consumed - len(messages)),
        "database_unreachable_samples": len(run.database_outages),
    }


async def _wait_folded(raw: str, messages: Sequence[Outgoing], within: float) -> bool:
    """Wait until the log holds as many events of the traffic's types as it must (through
    a PostgreSQL restart, too)."""
    wanted = Counter(kind for m in messages for kind in m.effect)
    sql = "SELECT type, count(*) FROM ledger.events WHERE type = ANY($1) GROUP BY type"
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            db = await asyncpg.connect(raw)
            try:
                rows = await db.fetch(sql, list(wanted))
            finally:
                await db.close()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            rows = []
        if Counter({r[0]: r[1] for r in rows}) == wanted:
            return True
        await asyncio.sleep(0.25)
    return False


async def _consumed(workers: Sequence[WorkerProcess]) -> float:
    """Messages the workers handed to their handlers, redeliveries included."""
    async with aiohttp.ClientSession() as http:
        counters = [await worker_counters(http, w.port) for w in workers]
    return sum(c.get("imageledger_messages_consumed_total", 0.0) for c in counters)


async def _ledger_checks(
    raw: str, expected: dict[str, tuple[str, ...]]
) -> tuple[dict[str, Any], dict[str, float]]:
    """Each message's effect, exactly (events by causation against what it must append);
    and when each message was folded (epoch seconds)."""
    db = await asyncpg.connect(raw)
    try:
        # The messages' events: the policy each worker records as it starts is no message's.
        rows = await db.fetch(
            "SELECT causation, type, extract(epoch FROM recorded_at)::float8 FROM ledger.events"
            " WHERE type <> 'policy.configured'"
        )
        twice = await db.fetchval(
            "SELECT count(*) - count(DISTINCT idempotency_key) FROM ledger.events"
        )
    finally:
        await db.close()
    actual: dict[str, list[str]] = {}
    folded_at: dict[str, float] = {}
    for causation, kind, at in rows:
        actual.setdefault(str(causation), []).append(str(kind))
        folded_at[str(causation)] = min(at, folded_at.get(str(causation), at))
    missing = [m for m in expected if m not in actual]
    wrong = [m for m, e in expected.items() if m in actual and tuple(sorted(actual[m])) != e]
    checks = {
        "events": len(rows),
        "events_expected": sum(len(e) for e in expected.values()),
        "missing": len(missing),
        "missing_sample": missing[:10],
        "wrong_effect": len(wrong),
        "wrong_sample": wrong[:10],
        "unexpected_causations": len(set(actual) - set(expected)),
        "duplicate_keys": int(twice),
    }
    return checks, folded_at


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
    """Where and when the figures were taken (the load average: other work on the machine
    slows the nodes, the workers and the publisher alike)."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "run_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
    }
