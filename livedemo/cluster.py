"""A simulated cluster: nodes report inventories and answer prepull requests over RabbitMQ."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection
from attrs import define, field, frozen

from worker.converter import decode_outbound_message, encode_message
from worker.domain.messages import (
    InboundMessage,
    NodeInventory,
    PodCompleted,
    PrepullRequestedMessage,
    RefreshRequested,
)
from worker.domain.nodes import KubeletImage, Taint

__all__ = ["Cluster", "ClusterTiming", "SimNode", "make_nodes", "simulated_cluster"]

IMAGE_SIZE = 9_000_000_000


@frozen
class ClusterTiming:
    """How fast the simulated kubelets are: pull time range and inventory period."""

    pull_seconds: tuple[float, float]
    inventory_every: float


@define
class SimNode:
    """A node: labels, taints and the digests its kubelet holds."""

    name: str
    labels: dict[str, str]
    taints: tuple[Taint, ...] = ()
    digests: set[str] = field(factory=set)


def make_nodes(count: int) -> list[SimNode]:
    """``count`` lab nodes over two zones; the last one carries a ``NoSchedule`` GPU taint."""
    nodes = []
    for i in range(1, count + 1):
        name = f"node-{i}"
        labels = {
            "nublado": "lab",
            "kubernetes.io/hostname": name,
            "topology.kubernetes.io/zone": "zone-a" if i % 2 else "zone-b",
        }
        taints: tuple[Taint, ...] = ()
        if i == count:
            labels["nvidia.com/gpu.present"] = "true"
            taints = (Taint(key="nvidia.com/gpu", effect="NoSchedule", value="true"),)
        nodes.append(SimNode(name, labels, taints))
    return nodes


def fails_first_attempt(node: str, digest: str) -> bool:
    """About one prepull in five fails on its first attempt (deterministic per pair)."""
    return hashlib.sha256(f"{node}{digest}".encode()).digest()[0] % 5 == 0


class Cluster:
    """Answers ``prepull.requested`` after a short pull; re-reports inventories periodically."""

    def __init__(
        self,
        exchange: AbstractExchange,
        nodes: list[SimNode],
        repository: str,
        timing: ClusterTiming,
    ) -> None:
        self._exchange = exchange
        self.nodes = {node.name: node for node in nodes}
        self._repository = repository
        self._timing = timing
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests = 0
        self.failures = 0

    async def publish(self, message: InboundMessage, routing_key: str, message_id: str) -> None:
        """Publish a message body as an outside system would (persistent, JSON)."""
        body = encode_message(message)
        await self._exchange.publish(
            aio_pika.Message(
                body,
                message_id=message_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key,
        )

    async def request_refresh(self, reason: str) -> None:
        """Publish ``refresh.request`` (what ``imageledger refresh`` or cron would send)."""
        now = datetime.now(tz=UTC)
        message = RefreshRequested(reason=reason, requested_at=now)
        await self.publish(message, RefreshRequested.ROUTING_KEY, f"demo-refresh-{now.timestamp()}")

    async def report_inventory(self, node: SimNode) -> None:
        """Send the node's labels, taints and image list (``node.inventory``)."""
        now = datetime.now(tz=UTC)
        images = tuple(
            KubeletImage(names=(f"{self._repository}@{digest}",), size_bytes=IMAGE_SIZE)
            for digest in sorted(node.digests)
        )
        message = NodeInventory(
            node=node.name, observed_at=now, labels=node.labels, taints=node.taints, images=images
        )
        message_id = f"inventory-{node.name}-{now.timestamp()}"
        await self.publish(message, NodeInventory.ROUTING_KEY, message_id)

    async def report_all(self) -> None:
        """Every node reports its inventory."""
        for node in self.nodes.values():
            await self.report_inventory(node)

    async def inventories(self) -> None:
        """Re-report every node's inventory every ``inventory_every`` seconds, forever."""
        while True:
            await asyncio.sleep(self._timing.inventory_every)
            await self.report_all()

    async def on_request(self, message: AbstractIncomingMessage) -> None:
        """A prepull pod starts: answer after the pull time (acknowledged at once)."""
        async with message.process():
            request = decode_outbound_message(PrepullRequestedMessage.ROUTING_KEY, message.body)
            if not isinstance(request, PrepullRequestedMessage):
                return
            self.requests += 1
            task = asyncio.create_task(self._pull(request, str(message.message_id)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pull(self, request: PrepullRequestedMessage, request_id: str) -> None:
        await asyncio.sleep(random.uniform(*self._timing.pull_seconds))
        node = self.nodes.get(request.node)
        failing = request.attempt == 1 and fails_first_attempt(request.node, request.digest)
        if node is not None and not failing:
            node.digests.add(request.digest)
        self.failures += failing
        answer = PodCompleted(
            node=request.node,
            image=request.image,
            pod=f"prepull-{request.tag.replace('_', '-')}-{request.node}",
            succeeded=not failing,
            finished_at=datetime.now(tz=UTC),
            reason="ErrImagePull: simulated registry timeout" if failing else None,
        )
        await self.publish(answer, PodCompleted.ROUTING_KEY, f"pod:{request_id}")

    async def close(self) -> None:
        """Cancel the pulls in progress."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with suppress(asyncio.CancelledError):
                await task


@asynccontextmanager
async def simulated_cluster(
    connection: AbstractRobustConnection,
    exchange_name: str,
    nodes: list[SimNode],
    repository: str,
    timing: ClusterTiming,
) -> AsyncIterator[Cluster]:
    """Bind the cluster's own (exclusive) request queue to the worker's exchange."""
    channel = await connection.channel()
    cluster: Cluster | None = None
    reporter: asyncio.Task[None] | None = None
    try:
        exchange = await channel.get_exchange(exchange_name)
        cluster = Cluster(exchange, nodes, repository, timing)
        requests = await channel.declare_queue(exclusive=True, auto_delete=True)
        await requests.bind(exchange, PrepullRequestedMessage.ROUTING_KEY)
        await requests.consume(cluster.on_request)
        await cluster.report_all()
        reporter = asyncio.create_task(cluster.inventories())
        yield cluster
    finally:
        if reporter is not None:
            reporter.cancel()
            with suppress(asyncio.CancelledError):
                await reporter
        if cluster is not None:
            await cluster.close()
        await channel.close()
