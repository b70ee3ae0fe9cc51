"""The simulated platform of ``bench/scale.py``: nodes reporting inventories, a pod launcher
answering prepull requests after a pull time, and a registry whose weekly moves on.

Nodes are ``sim-00000`` ..., labelled for the lab; one in fifty carries a taint the lab does
not tolerate (not eligible, as in the worker benchmark's workload). Each node reports 30
images of its own, plus the prepull targets it holds (the last ten pulled), every
``cadence`` seconds of wall time, the reports spread evenly over the cadence. With
probability ``churn`` a report replaces one of its own images (a user image came or went),
so that it appends an inventory change; an unchanged report appends nothing to the ledger.

The launcher consumes ``prepull.requested`` from the worker's exchange as the platform's
pod launcher does (a queue of its own bound to the routing key), and after ``pull_seconds``
publishes a successful ``prepull.pod_completed``; the node lists the digest from then on.
Every message sent is recorded (message id -> when, in which phase, which kind) for the
publish-to-fold lag.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import aiohttp
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from attrs import define, field

from bench.worker_workload import REPOSITORY, SELECTOR, UNTOLERATED, eligible
from tests.support.push import RegistryPusher
from tests.support.registry import RunningRegistry
from worker.adapters.broker import Broker
from worker.converter import decode_outbound_message, encode_message
from worker.domain.messages import (
    NodeInventory,
    PodCompleted,
    PrepullRequestedMessage,
    RefreshRequested,
)
from worker.domain.nodes import KubeletImage

__all__ = ["NOMINAL_CADENCE", "Platform", "Sent", "node_name", "weekly"]

NOMINAL_CADENCE = 300.0
"""Seconds between two inventories of one node at 1x (``kube.inventoryInterval``: 5m)."""
OWN_IMAGES = 30
HELD = 10
"""Prepulled digests a node keeps listing (the kubelet's garbage collection drops older)."""
TICK = 0.1


def node_name(n: int) -> str:
    """The name of node ``n``."""
    return f"sim-{n:05d}"


def weekly(i: int) -> str:
    """The ``i``-th weekly tag, oldest first (52 a year from 2000)."""
    return f"w_{2000 + i // 52}_{i % 52 + 1:02d}"


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


Sent = tuple[float, str, str]
"""(epoch seconds, phase, ``inventory`` or ``completion``) of a message sent."""


@define
class Platform:
    """The nodes, the pod launcher and the registry's owner, publishing through ``broker``."""

    nodes: int
    registry: RunningRegistry
    broker: Broker
    pull_seconds: float
    churn: float = 0.1
    phase: str = "setup"
    sent: dict[str, Sent] = field(factory=dict)
    requests: int = 0
    received: dict[tuple[str, str], float] = field(factory=dict)
    """(node, digest) -> when the launcher first received its ``prepull.requested``."""
    held: list[list[str]] = field(factory=list)
    _generation: list[int] = field(factory=list)
    _reports: list[int] = field(factory=list)
    _next: int = 0
    _owed: float = 0.0
    _tags: int = 0
    _digests: dict[str, str] = field(factory=dict)
    _pulls: set[asyncio.Task[None]] = field(factory=set)
    _rng: random.Random = field(factory=lambda: random.Random(16))
    _pusher: RegistryPusher | None = None

    def __attrs_post_init__(self) -> None:
        self.held = [[] for _ in range(self.nodes)]
        self._generation = [0] * self.nodes
        self._reports = [0] * self.nodes

    @property
    def pulling(self) -> bool:
        """Whether a simulated pull has not answered yet."""
        return bool(self._pulls)

    @property
    def eligible_nodes(self) -> int:
        """How many nodes the lab may use."""
        return sum(eligible(n) for n in range(self.nodes))

    # The registry ----------------------------------------------------------------------

    async def push_tags(self, session: aiohttp.ClientSession, count: int) -> None:
        """Push ``count`` weeklies (one tiny image each) and ``recommended`` on the newest;
        every node already holds the newest three (nothing to prepull at the start)."""
        self._pusher = pusher = self.registry.pusher(session)
        pusher.concurrency = 16
        tags = [weekly(i) for i in range(count)]
        self._digests = await pusher.push_tags(REPOSITORY, tags)
        await pusher.tag(REPOSITORY, "recommended", self._digests[tags[-1]])
        self._tags = count
        current = [self._digests[t] for t in tags[-3:]]
        self.held = [list(current) for _ in range(self.nodes)]

    async def new_weekly(self) -> tuple[str, str]:
        """A simulated day: push the next weekly, move ``recommended`` to the one before it
        (already on every node), ask for a refresh. Returns the new tag and its digest."""
        pusher = self._pusher
        assert pusher is not None, "push_tags first"
        previous, tag = weekly(self._tags - 1), weekly(self._tags)
        (digest,) = (await pusher.push_tags(REPOSITORY, [tag])).values()
        self._digests[tag] = digest
        await pusher.tag(REPOSITORY, "recommended", self._digests[previous])
        self._tags += 1
        await self.refresh(f"day-{self._tags}")
        return tag, digest

    async def refresh(self, reason: str) -> None:
        """Publish a ``refresh.request``, as cron or ``imageledger refresh`` does."""
        message = RefreshRequested(reason=reason, requested_at=datetime.now(UTC))
        await self.broker.publish_message(message, message_id=f"refresh-{reason}")

    # The nodes -------------------------------------------------------------------------

    def _inventory(self, n: int) -> tuple[str, bytes]:
        if self._reports[n] and self._rng.random() < self.churn:
            self._generation[n] += 1
        self._reports[n] += 1
        own = [_digest(f"own-{(7 * n + k) % 400}") for k in range(1, OWN_IMAGES)]
        own.append(_digest(f"user-{n}-{self._generation[n]}"))
        images = tuple(
            KubeletImage((f"{self.registry.host}/{REPOSITORY}@{d}",), 2 * 10**9 + i)
            for i, d in enumerate([*self.held[n][-HELD:], *own])
        )
        message = NodeInventory(
            node=node_name(n),
            observed_at=datetime.now(UTC),
            labels={**SELECTOR, "kubernetes.io/hostname": node_name(n)},
            taints=() if eligible(n) else (UNTOLERATED,),
            images=images,
        )
        return f"inv-{node_name(n)}-{self._reports[n]}", encode_message(message)

    async def _publish(self, messages: Sequence[tuple[str, str, bytes]], kind: str) -> None:
        now = time.time()
        for message_id, _, _ in messages:
            self.sent[message_id] = (now, self.phase, kind)
        await asyncio.gather(
            *(self.broker.publish(key, body, message_id=mid) for mid, key, body in messages)
        )

    async def report_all(self, window: int = 500) -> None:
        """Every node reports once, as fast as the broker confirms (the starting state)."""
        for start in range(0, self.nodes, window):
            batch = [self._inventory(n) for n in range(start, min(self.nodes, start + window))]
            await self._publish([(m, NodeInventory.ROUTING_KEY, b) for m, b in batch], "inventory")

    async def report(self, seconds: float, cadence: float) -> None:
        """Nodes report in turn for ``seconds``, each once per ``cadence`` seconds."""
        began = last = time.monotonic()
        while (now := time.monotonic()) < began + seconds:
            self._owed += (now - last) * self.nodes / cadence
            last = now
            due = int(self._owed)
            self._owed -= due
            batch = []
            for _ in range(due):
                batch.append(self._inventory(self._next))
                self._next = (self._next + 1) % self.nodes
            if batch:
                keyed = [(m, NodeInventory.ROUTING_KEY, b) for m, b in batch]
                await self._publish(keyed, "inventory")
            await asyncio.sleep(max(0.0, TICK - (time.monotonic() - now)))

    # The pod launcher ------------------------------------------------------------------

    async def launch(self, connection: AbstractRobustConnection, exchange: str) -> None:
        """Consume ``prepull.requested`` from the worker's exchange until the connection
        closes."""
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1000)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(await channel.get_exchange(exchange), PrepullRequestedMessage.ROUTING_KEY)
        await queue.consume(self._on_request)

    async def _on_request(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            request = decode_outbound_message(PrepullRequestedMessage.ROUTING_KEY, message.body)
            assert isinstance(request, PrepullRequestedMessage)
            self.requests += 1
            self.received.setdefault((request.node, request.digest), time.time())
            pull = asyncio.create_task(self._pull(f"pod:{message.message_id}", request))
            self._pulls.add(pull)
            pull.add_done_callback(self._pulls.discard)

    async def _pull(self, message_id: str, request: PrepullRequestedMessage) -> None:
        await asyncio.sleep(self.pull_seconds)
        n = int(request.node.removeprefix("sim-"))
        if request.digest not in self.held[n]:
            self.held[n].append(request.digest)
        answer = PodCompleted(
            node=request.node,
            image=request.image,
            pod=f"prepull-{self.requests}",
            succeeded=True,
            finished_at=datetime.now(UTC),
        )
        keyed = [(message_id, PodCompleted.ROUTING_KEY, encode_message(answer))]
        await self._publish(keyed, "completion")
