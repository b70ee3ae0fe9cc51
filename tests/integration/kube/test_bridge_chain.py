"""The chain a deployment runs: registry -> worker -> RabbitMQ -> ``imageledger kube`` -> the
(stand-in) API server's pods and kubelets -> back to the worker's status."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.kube import KubeletTiming, KubeStandIn, kube_standin
from tests.support.kube_chain import LAB, REPOSITORY, TAINT, chain, chain_config
from tests.support.rabbit import wait_until
from tests.support.registry import RunningRegistry
from worker.adapters.broker import BrokerSettings

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[KubeStandIn]:
    """A stand-in with its own (mutable) kubelet timing; two lab nodes and a tainted one."""
    timing = KubeletTiming(start_seconds=0.02, pull_seconds=0.3, run_seconds=0.05)
    async with kube_standin(tmp_path / "kube", timing=timing, bookmark_seconds=0.3) as kube:
        kube.add_node("node-a", LAB)
        kube.add_node("node-b", LAB)
        kube.add_node("node-c", LAB, taints=[TAINT])
        yield kube


@pytest.fixture
async def weekly(registry: RunningRegistry, registry_session: aiohttp.ClientSession) -> str:
    """A new weekly in the registry, also tagged recommended: its digest."""
    pusher = registry.pusher(registry_session)
    return await pusher.push_image(REPOSITORY, ["w_2077_43", "recommended"], variant="w43")


Services = tuple[BrokerSettings, str, AsyncEngine, AbstractRobustConnection]


@pytest.fixture
def services(
    broker_settings: BrokerSettings,
    database_url: str,
    engine: AsyncEngine,
    rabbit_connection: AbstractRobustConnection,
) -> Services:
    """RabbitMQ (a vhost and names of this test's own) and a migrated database."""
    return broker_settings, database_url, engine, rabbit_connection


async def test_a_new_weekly_reaches_every_eligible_node_and_no_pod_goes_to_the_tainted(
    tmp_path: Path, cluster: KubeStandIn, registry: RunningRegistry, weekly: str,
    services: Services,
) -> None:  # fmt: skip
    async with chain(tmp_path, cluster, chain_config(registry.host), *services) as run:
        await run.nodes_known(3)
        await run.refresh()
        await run.converged(eligible=2)
        await run.no_pods_left()
        metrics = await run.bridge.metrics()
    assert sorted(node for _, node in cluster.created) == ["node-a", "node-b"]
    for node in ("node-a", "node-b"):
        assert run.pinned(weekly) in cluster.node_images(node)
    assert cluster.node_images("node-c") == []
    succeeded = await run.events("prepull.succeeded")
    assert sorted((e["node"], e["digest"], e["pod"]) for e in succeeded) == sorted(
        (node, weekly, pod) for pod, node in cluster.created
    )
    assert metrics["imageledger_bridge_pods_created_total"] == 2
    assert metrics['imageledger_bridge_pods_completed_total{outcome="succeeded",reason=""}'] == 2
    assert metrics["imageledger_bridge_nodes_watched"] == 3


async def test_a_node_added_later_gets_its_prepulls_also_after_the_watch_expired(
    tmp_path: Path, cluster: KubeStandIn, registry: RunningRegistry, weekly: str,
    services: Services,
) -> None:  # fmt: skip
    async with chain(tmp_path, cluster, chain_config(registry.host), *services) as run:
        await run.nodes_known(3)
        await run.refresh()
        await run.converged(eligible=2)
        cluster.add_node("node-d", LAB)
        await run.converged(eligible=3)
        cluster.compact()  # every resumed watch now gets 410 Gone and must list again
        await wait_until(lambda: cluster.watches("Node") == cluster.watches("Pod") == 1)
        cluster.add_node("node-e", LAB)
        await run.converged(eligible=4)
        await run.no_pods_left()
        metrics = await run.bridge.metrics()
    assert sorted(node for _, node in cluster.created) == ["node-a", "node-b", "node-d", "node-e"]
    restarts = 'imageledger_bridge_watch_restarts_total{{cause="expired",resource="{}"}}'
    assert metrics[restarts.format("nodes")] >= 1
    assert metrics[restarts.format("pods")] >= 1
    assert len(await run.events("prepull.succeeded")) == 4


async def test_a_pull_failure_is_retried_with_back_off_then_parked(
    tmp_path: Path, cluster: KubeStandIn, registry: RunningRegistry, weekly: str,
    services: Services,
) -> None:  # fmt: skip
    document = chain_config(registry.host, maxAttempts=3, backoff=0.5, maxBackoff=2)
    async with chain(tmp_path, cluster, document, *services) as run:
        cluster.mark_unpullable(run.pinned(weekly))
        await run.nodes_known(3)
        await run.refresh()

        async def parked() -> bool:
            rows = await run.rows("SELECT status FROM dashboard.prepull_queue")
            return len(rows) == 2 and {r.status for r in rows} == {"parked"}

        await wait_until(parked, within=25, what="both pairs parked")
        await run.no_pods_left()
        queue = await run.rows("SELECT node, attempts, reason FROM dashboard.prepull_queue")
        requested = await run.events("prepull.requested")
        failed = await run.events("prepull.failed")
    assert Counter(node for _, node in cluster.created) == {"node-a": 3, "node-b": 3}
    assert {(r.node, r.attempts) for r in queue} == {("node-a", 3), ("node-b", 3)}
    assert len(failed) == 6
    assert all(e["reason"].startswith("ErrImagePull") for e in failed)
    for node in ("node-a", "node-b"):
        asked = [at(e) for e in requested if e["node"] == node]
        ended = [at(e) for e in failed if e["node"] == node]
        waits = [asked[i + 1] - ended[i] for i in range(2)]
        assert waits[0] >= 0.45, waits  # back-off 0.5 s after the first failure
        assert waits[1] >= 0.95, waits  # then 1 s


def at(event: dict[str, str]) -> float:
    """When an event happened, in seconds since the epoch."""
    return datetime.fromisoformat(event["occurred_at"]).timestamp()


async def test_a_bridge_killed_mid_pull_loses_no_completion_and_leaves_no_pod(
    tmp_path: Path, cluster: KubeStandIn, registry: RunningRegistry, weekly: str,
    services: Services,
) -> None:  # fmt: skip
    cluster.timing.pull_seconds = 1.5
    async with chain(tmp_path, cluster, chain_config(registry.host), *services) as run:
        await run.nodes_known(3)
        await run.refresh()
        await wait_until(lambda: len(cluster.pods()) == 2, what="two pods pulling")
        await run.bridge.kill()  # SIGKILL: no goodbye, pods keep pulling
        await wait_until(
            lambda: all(p.status.phase == "Succeeded" for p in cluster.pods()),
            within=10, what="the pods finished while no bridge watched",
        )  # fmt: skip
        assert await run.events("prepull.succeeded") == []
        await run.bridge.start()  # adopts the pods by their labels
        await run.converged(eligible=2)
        await run.no_pods_left()
    assert sorted(node for _, node in cluster.created) == ["node-a", "node-b"]
    succeeded = await run.events("prepull.succeeded")
    assert sorted(e["pod"] for e in succeeded) == sorted(pod for pod, _ in cluster.created)
    assert "Traceback" not in "\n".join(run.bridge.log_lines())


async def test_the_api_server_away_for_ten_seconds_is_waited_out(
    tmp_path: Path, cluster: KubeStandIn, registry: RunningRegistry, weekly: str,
    services: Services,
) -> None:  # fmt: skip
    async with chain(tmp_path, cluster, chain_config(registry.host), *services) as run:
        await run.nodes_known(3)
        await cluster.go_away()
        await run.refresh()  # its requests reach the bridge while the API server is away
        await asyncio.sleep(10)
        assert cluster.created == []
        assert run.bridge.running
        await cluster.come_back()
        await run.converged(eligible=2)
        await run.no_pods_left()
        metrics = await run.bridge.metrics()
    assert sorted(node for _, node in cluster.created) == ["node-a", "node-b"]
    lines = run.bridge.log_lines()
    warned = sorted(logged_event(line) for line in lines if "level=warning" in line)
    assert warned == [
        "Kubernetes API unavailable, retrying in N s",
        "nodes: list and watch failed; retrying with back-off",
        "pods: list and watch failed; retrying with back-off",
    ]
    recovered = {logged_event(line) for line in lines if "level=info" in line}
    assert {
        "Kubernetes API available again",
        "nodes: list and watch works again",
        "pods: list and watch works again",
    } <= recovered
    assert metrics['imageledger_bridge_watch_restarts_total{cause="error",resource="nodes"}'] >= 1


def logged_event(line: str) -> str:
    """The event of a logfmt line, numbers of seconds as N."""
    match = re.search(r'event="([^"]*)"', line) or re.search(r"event=(\S+)", line)
    assert match, line
    return re.sub(r"[0-9.]+ s$", "N s", match[1])
