"""The node reporter: ``node.inventory`` when a node's labels, taints or images change,
every node again every interval, and ``node.gone`` when a node leaves the cluster."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from attrs import field, frozen

from worker.domain.cluster import ClusterNode, NodeEvent, WatchEventKind
from worker.domain.errors import ImageLedgerError
from worker.domain.messages import NodeGoneMessage, NodeInventory
from worker.services.kube.ports import BridgeCounters, NodeSource, Publisher
from worker.services.kube.retry import Backoff, follow

__all__ = ["NodeReporter", "ReporterSettings"]

log = structlog.get_logger("imageledger.kube.nodes")


@frozen
class ReporterSettings:
    """Every node is reported again every ``inventory_interval`` (spread by ``jitter``,
    a fraction either way); failed list and watch requests back off by ``backoff``."""

    inventory_interval: timedelta = timedelta(minutes=5)
    jitter: float = 0.1
    backoff: Backoff = field(factory=Backoff)


class NodeReporter:
    """Follows the cluster's nodes and publishes what the worker needs of them.

    A change is published once (the node's uid and resource version make its message
    id, so a repeat is recognised by the worker); a heartbeat that changes nothing the
    worker reads publishes nothing. ``synced`` is set once the first listing is out.
    """

    def __init__(
        self,
        source: NodeSource,
        publisher: Publisher,
        *,
        clock: Callable[[], datetime],
        settings: ReporterSettings | None = None,
        counters: BridgeCounters | None = None,
    ) -> None:
        self._source = source
        self._publisher = publisher
        self._clock = clock
        self._settings = settings or ReporterSettings()
        self.counters = counters or BridgeCounters()
        self.synced = asyncio.Event()
        self._nodes: dict[str, ClusterNode] = {}
        self._reported: dict[str, tuple[object, ...]] = {}

    @property
    def nodes_watched(self) -> int:
        """How many nodes the cluster has, as last seen."""
        return len(self._nodes)

    async def run(self) -> None:
        """Follow the nodes and report them periodically, until cancelled."""
        await follow(
            "nodes",
            self._relist,
            self._source.watch_nodes,
            self._apply,
            self._report_periodically,
            backoff=self._settings.backoff,
            counters=self.counters,
        )

    async def _relist(self) -> str:
        listing = await self._source.list_nodes()
        listed = {node.name for node in listing.nodes}
        for name in [n for n in self._nodes if n not in listed]:
            await self._gone(self._nodes[name])
        for node in listing.nodes:
            await self._seen(node)
        if not self.synced.is_set():
            log.info("nodes listed", nodes=len(listing.nodes))
            self.synced.set()
        return listing.resource_version

    async def _apply(self, event: NodeEvent) -> str:
        node = event.node
        if node is not None and event.kind is WatchEventKind.DELETED:
            await self._gone(node)
        elif node is not None:
            await self._seen(node)
        return event.resource_version

    async def _seen(self, node: ClusterNode) -> None:
        self._nodes[node.name] = node
        if self._reported.get(node.name) != (node.uid, node.inventory()):
            await self._publish_inventory(node)

    async def _gone(self, node: ClusterNode) -> None:
        message = NodeGoneMessage(node=node.name, observed_at=self._clock())
        await self._publisher.publish_message(message, message_id=f"node.gone:{node.uid}")
        self._nodes.pop(node.name, None)
        self._reported.pop(node.name, None)
        self.counters.published[NodeGoneMessage.ROUTING_KEY] += 1
        log.info("node gone", node=node.name)

    async def _publish_inventory(self, node: ClusterNode) -> None:
        message = NodeInventory(
            node=node.name,
            observed_at=self._clock(),
            labels=dict(node.labels),
            taints=node.taints,
            images=node.images,
            unschedulable=node.unschedulable,
        )
        message_id = f"node.inventory:{node.uid}:{node.resource_version}"
        await self._publisher.publish_message(message, message_id=message_id)
        if self._nodes.get(node.name) is node:
            self._reported[node.name] = (node.uid, node.inventory())
        self.counters.published[NodeInventory.ROUTING_KEY] += 1
        log.debug("node inventory published", node=node.name, images=len(node.images))

    async def _report_periodically(self) -> None:
        await self.synced.wait()
        settings = self._settings
        while True:
            spread = random.uniform(1 - settings.jitter, 1 + settings.jitter)
            await asyncio.sleep(settings.inventory_interval.total_seconds() * spread)
            await self.report_all()

    async def report_all(self) -> None:
        """Publish the inventory of every node as last seen (a failure is logged; the
        next report tries again)."""
        try:
            for node in list(self._nodes.values()):
                await self._publish_inventory(node)
        except ImageLedgerError as exc:
            log.warning("periodic node report failed", error=str(exc))
            return
        log.debug("every node reported", nodes=len(self._nodes))
