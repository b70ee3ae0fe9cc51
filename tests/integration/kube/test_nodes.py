"""Nodes through the real client: list, watch, bookmarks, 410, and the node reporter."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import timedelta

import pytest

from tests.integration.kube.conftest import DIGEST, QUICK_BACKOFF, now, pinned
from tests.support.bridge import MemoryBroker, running
from tests.support.kube import KubeStandIn
from worker.adapters.kube import KubeConnection
from worker.domain.cluster import NodeEvent, WatchEventKind
from worker.domain.errors import KubeWatchExpiredError
from worker.domain.messages import NodeGoneMessage, NodeInventory
from worker.domain.nodes import KubeletImage, Taint
from worker.services.kube import NodeReporter, ReporterSettings


def reporter(
    connection: KubeConnection,
    broker: MemoryBroker,
    interval: timedelta = timedelta(minutes=5),
) -> NodeReporter:
    settings = ReporterSettings(inventory_interval=interval, backoff=QUICK_BACKOFF)
    return NodeReporter(connection.nodes(), broker, clock=now, settings=settings)


async def drain(events: AsyncGenerator[NodeEvent, None]) -> None:
    async with aclosing(events):
        async for _ in events:
            pass


async def test_list_gives_labels_taints_and_kubelet_images(
    kube: KubeStandIn, connection: KubeConnection
) -> None:
    kube.add_node("node-1", {"zone": "a"}, [("gpu", "NoSchedule", "true")], [pinned()])
    listing = await connection.nodes().list_nodes()
    (node,) = listing.nodes
    assert node.name == "node-1"
    assert node.labels["zone"] == "a"
    assert node.taints == (Taint(key="gpu", effect="NoSchedule", value="true"),)
    assert node.images == (KubeletImage((pinned(),), 1_500_000_000),)
    assert listing.resource_version == str(kube.store.rv)


async def test_watch_resumes_from_a_version_and_bookmarks_advance_it(
    kube: KubeStandIn, connection: KubeConnection
) -> None:
    kube.add_node("node-1")
    listing = await connection.nodes().list_nodes()
    kube.label_node("node-1", {"zone": "b"})
    kube.add_node("node-2")
    seen: list[NodeEvent] = []
    async with aclosing(connection.nodes().watch_nodes(listing.resource_version)) as events:
        async for event in events:
            seen.append(event)
            if event.kind is WatchEventKind.BOOKMARK:
                break
    kinds = [(e.kind, e.node.name if e.node else None) for e in seen]
    assert kinds == [
        (WatchEventKind.MODIFIED, "node-1"),
        (WatchEventKind.ADDED, "node-2"),
        (WatchEventKind.BOOKMARK, None),
    ]
    assert seen[0].node is not None
    assert seen[0].node.labels["zone"] == "b"
    assert seen[-1].resource_version == str(kube.store.rv)


async def test_an_expired_version_raises_watch_expired(
    kube: KubeStandIn, connection: KubeConnection
) -> None:
    kube.add_node("node-1")
    listing = await connection.nodes().list_nodes()
    kube.compact()
    events = connection.nodes().watch_nodes(listing.resource_version)
    with pytest.raises(KubeWatchExpiredError, match=r"410.*too old resource version"):
        await drain(events)


async def test_reporter_publishes_changes_only_and_nodes_that_go(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    kube.add_node("node-1", {"zone": "a"})
    kube.add_node("node-2")
    nodes = reporter(connection, broker)
    async with running(nodes.run()):
        await broker.wait_for(NodeInventory, count=2)
        kube.heartbeat("node-1")
        kube.taint_node("node-2", "gpu", "NoSchedule", "true")
        tainted = await broker.wait_for(NodeInventory, lambda m: bool(m.taints))
        kube.add_node("node-3", images=[pinned()])
        (added,) = await broker.wait_for(NodeInventory, lambda m: m.node == "node-3")
        kube.remove_node("node-1")
        (gone,) = await broker.wait_for(NodeGoneMessage)
        assert nodes.nodes_watched == 2
    assert [m.node for m in broker.of(NodeInventory)] == ["node-1", "node-2", "node-2", "node-3"]
    assert tainted[0].taints == (Taint(key="gpu", effect="NoSchedule", value="true"),)
    assert added.images == (KubeletImage((pinned(),), 1_500_000_000),)
    assert gone.node == "node-1"
    assert len(set(broker.ids(NodeInventory))) == 4


async def test_reporter_lists_again_after_410_and_reports_what_changed(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    kube.add_node("node-1")
    kube.add_node("node-2")
    nodes = reporter(connection, broker)
    async with running(nodes.run()):
        await broker.wait_for(NodeInventory, count=2)
        await kube.go_away()
        kube.label_node("node-1", {"zone": "c"})
        kube.remove_node("node-2")
        kube.compact()
        await kube.come_back()
        await broker.wait_for(NodeGoneMessage, lambda m: m.node == "node-2", within=5)
        await broker.wait_for(NodeInventory, lambda m: m.labels.get("zone") == "c")
    assert nodes.counters.watch_restarts[("nodes", "expired")] == 1
    lists = [path for method, path in kube.requests if path == "/api/v1/nodes"]
    assert len(lists) == 2


async def test_periodic_report_sends_every_node_again(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    kube.add_node("node-1", images=[pinned(DIGEST)])
    kube.add_node("node-2")
    nodes = reporter(connection, broker, timedelta(seconds=0.3))
    async with running(nodes.run()):
        messages = await broker.wait_for(NodeInventory, count=6)
    assert {m.node for m in messages[2:]} == {"node-1", "node-2"}
