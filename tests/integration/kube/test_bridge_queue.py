"""The bridge's request queue on a real RabbitMQ: its topology, a request acknowledged only once
its pod exists (held while the API server refuses), bad requests dead-lettered and replayable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from aio_pika.abc import AbstractRobustConnection
from attrs import evolve

from tests.integration.kube.conftest import NAMESPACE, request
from tests.support.kube import KubeStandIn
from tests.support.rabbit import publish_raw, queue_depth, wait_until
from worker import factory
from worker.adapters.broker import BrokerSettings, DeadLetterQueue
from worker.adapters.broker.topology import build_topology
from worker.bridge import Bridge
from worker.converter import encode_message, parse_config

SOURCE = {"repository": "sqre/sciplat-lab", "registry": "registry.example.org"}
KUBE = {"namespace": NAMESPACE, "retryDelay": 0.1, "maxRetryDelay": 0.4}
CONFIG = parse_config({"images": {"source": SOURCE}, "kube": KUBE})


def test_the_bridge_declares_its_own_queue_and_the_shared_exchanges() -> None:
    worker = build_topology("il", 20, "worker")
    bridge = build_topology("il", 20, "bridge")
    assert worker.exchanges == bridge.exchanges
    (own,) = bridge.inbound
    assert own.name == "il.bridge.prepull_requested"
    assert own.delay_queue == "il.bridge.prepull_requested.delay"
    assert bridge.queue_for("prepull.requested") is own
    spec = bridge.spec(own.name)
    assert spec.bindings == (("il", "prepull.requested"),)
    assert spec.arguments["x-queue-type"] == "quorum"
    assert spec.arguments["x-dead-letter-exchange"] == "il.dead"
    assert bridge.spec(own.delay_queue).arguments["x-dead-letter-routing-key"] == own.name
    assert ("il", "prepull.requested") in bridge.spec("il.outbound.discard").bindings
    assert {q.name for q in worker.inbound}.isdisjoint(q.name for q in bridge.inbound)
    # what the bridge publishes waits in the worker's queues, whoever starts first
    assert all(q in bridge.queues for q in worker.queues)
    assert {q.name for q in bridge.queues} - {q.name for q in worker.queues} == {
        own.name,
        own.delay_queue,
    }


@asynccontextmanager
async def running_bridge(
    kube: KubeStandIn, settings: BrokerSettings
) -> AsyncIterator[factory.BridgeRuntime]:
    """The bridge's graph over the stand-in, started (in this process); stopped after."""
    async with factory.bridge_runtime(CONFIG, settings, kube.kubeconfig) as runtime:
        bridge = Bridge(runtime)
        await bridge.start()
        try:
            yield runtime
        finally:
            await bridge.stop()


async def test_a_request_is_acknowledged_once_its_pod_exists(
    kube: KubeStandIn, broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    assert kube.role is not None
    kube.role.revoke("pods", "create")
    kube.add_node("node-1")
    settings = evolve(broker_settings, outage_delay=timedelta(seconds=0.1))
    queue = f"{settings.prefix}.bridge.prepull_requested"
    body = encode_message(request("node-1"))
    with structlog.testing.capture_logs() as logs:
        async with running_bridge(kube, settings):
            await publish_raw(rabbit_connection, settings.prefix, "prepull.requested", body)
            await asyncio.sleep(1.0)  # refused (403) all along: held, tried again
        assert kube.pods() == []
        assert await queue_depth(rabbit_connection, queue) == 1  # handed back, not acked
        kube.role.grant("pods", "create", NAMESPACE)
        async with running_bridge(kube, settings):
            await wait_until(lambda: len(kube.pods()) == 1, what="the pod")
    assert await queue_depth(rabbit_connection, queue) == 0  # acknowledged
    assert await queue_depth(rabbit_connection, f"{queue}.delay") == 0
    assert await queue_depth(rabbit_connection, f"{settings.prefix}.dead") == 0
    held = [e for e in logs if e["event"].startswith("Kubernetes API unavailable")]
    assert len(held) >= 3  # backed off (0.1 s doubling to 0.4 s) over a second
    assert held[0]["log_level"] == "warning"
    assert {e["log_level"] for e in held[1:]} == {"debug"}
    assert 'cannot create resource "pods"' in held[0]["error"]


async def test_a_bad_request_is_dead_lettered_and_can_be_replayed(
    kube: KubeStandIn, broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    kube.add_node("node-1")
    good = json.loads(encode_message(request("node-1")))
    bad = {**good, "attempt": "first"}
    async with running_bridge(kube, broker_settings):
        await publish_raw(
            rabbit_connection, broker_settings.prefix, "prepull.requested",
            json.dumps(bad).encode(), message_id="bad-request",
        )  # fmt: skip
        dead = f"{broker_settings.prefix}.dead"
        await wait_until(lambda: _depth(rabbit_connection, dead, 1), what="the dead letter")
    assert kube.pods() == []
    async with DeadLetterQueue(broker_settings.url, broker_settings.prefix) as letters:
        (letter,) = await letters.peek()
        assert letter.routing_key == "prepull.requested"
        assert letter.source_queue == f"{broker_settings.prefix}.bridge.prepull_requested"
        assert "attempt" in (letter.reason or "")
        report = await letters.replay(lambda _: True)
    assert [r.message_id for r in report.replayed] == ["bad-request"]
    assert report.failed == ()


async def _depth(connection: AbstractRobustConnection, queue: str, count: int) -> bool:
    return await queue_depth(connection, queue) == count
