"""RabbitMQ topology as data, the broker settings, and how both are declared idempotently."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal, Protocol

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection
from attrs import evolve, field, frozen

from worker.adapters.broker.urls import split_amqp_urls
from worker.domain.errors import ImageLedgerError, TransientError
from worker.domain.messages import (
    OUTBOUND_MESSAGES,
    NodeGoneMessage,
    NodeInventory,
    PodCompleted,
    PrepullRequestedMessage,
    RefreshRequested,
)

__all__ = [
    "AMQP_URL_ENV",
    "ATTEMPT_HEADER",
    "AUTHENTICATION_FAILED",
    "CONNECTION_LOST",
    "CONSUMERS",
    "DEAD_AT_HEADER",
    "DEFAULT_AMQP_URL",
    "QUEUE_HEADER",
    "REASON_HEADER",
    "ROUTING_KEY_HEADER",
    "UNREACHABLE",
    "BrokerError",
    "BrokerMetrics",
    "BrokerSettings",
    "BrokerUnavailableError",
    "Consumer",
    "ExchangeSpec",
    "InboundQueue",
    "NoMetrics",
    "QueueSpec",
    "QueueState",
    "Topology",
    "amqp_url",
    "build_topology",
    "declare_topology",
    "exchange_exists",
    "queue_state",
]

UNREACHABLE = (aio_pika.exceptions.AMQPConnectionError, ConnectionError, OSError)
"""Errors of a broker that cannot be reached (connect, or a connection that broke)."""
AUTHENTICATION_FAILED = (
    aio_pika.exceptions.AuthenticationError,
    aio_pika.exceptions.ProbableAuthenticationError,
)
"""Errors of a broker that refused the credentials."""
CONNECTION_LOST = (
    aio_pika.exceptions.ChannelInvalidStateError,
    aio_pika.exceptions.ChannelClosed,
    *UNREACHABLE,
)
"""Errors of an operation whose channel or connection went away."""

AMQP_URL_ENV = "IMAGELEDGER_AMQP_URL"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

ATTEMPT_HEADER = "x-imageledger-attempt"
"""The handler attempt a delivery is (1 on first arrival, +1 per trip through a delay queue)."""
REASON_HEADER = "x-imageledger-reason"
"""Why a message was dead-lettered (or, on a delayed copy, why its last attempt failed)."""
ROUTING_KEY_HEADER = "x-imageledger-routing-key"
"""The routing key the message was first published with (kept through delay and dead queues)."""
QUEUE_HEADER = "x-imageledger-queue"
"""The work queue a dead-lettered message came from."""
DEAD_AT_HEADER = "x-imageledger-dead-lettered-at"
"""When the worker dead-lettered the message (ISO 8601, UTC)."""

log = structlog.get_logger(__name__)


class BrokerError(ImageLedgerError):
    """RabbitMQ refused an operation (topology mismatch, unroutable publish...)."""


class BrokerUnavailableError(BrokerError, TransientError):
    """RabbitMQ cannot be reached; the operation can be retried later."""


def amqp_url(url: str | None = None) -> str:
    """The URL given, else ``IMAGELEDGER_AMQP_URL``, else the local default (each may be
    several comma-separated URLs: the nodes of a cluster)."""
    return url or os.environ.get(AMQP_URL_ENV) or DEFAULT_AMQP_URL


@frozen
class BrokerSettings:
    """Connection, topology names, batching and retry knobs (defaults for production)."""

    url: str = DEFAULT_AMQP_URL
    """One AMQP URL, or the comma-separated URLs of a cluster's nodes (``urls``)."""
    prefix: str = "imageledger"
    """Exchange ``<prefix>``; queues ``<prefix>.refresh`` and so on (unique per test)."""
    prefetch: int = 1000
    batch_size: int = 500
    batch_timeout: timedelta = timedelta(milliseconds=50)
    """How long a batch waits for more messages after its first one."""
    max_attempts: int = 5
    """Handler attempts per message before it is dead-lettered."""
    retry_delay: timedelta = timedelta(seconds=2)
    """Delay before the second attempt; doubles per attempt up to ``max_retry_delay``."""
    max_retry_delay: timedelta = timedelta(minutes=5)
    outage_delay: timedelta = timedelta(seconds=1)
    """First wait before a batch held by a transient failure (database away) is tried
    again; doubles per wait up to ``max_outage_delay``. Holding counts no attempt."""
    max_outage_delay: timedelta = timedelta(seconds=30)
    delivery_limit: int = 20
    """Broker-side cap on redeliveries (consumer crashes); then the broker dead-letters."""
    reconnect_delay: timedelta = timedelta(seconds=1)
    max_reconnect_delay: timedelta = timedelta(seconds=30)
    connect_attempts: int = 10
    """Rounds of first connection attempts, each trying every URL in turn (back-off
    doubling between rounds); later losses reconnect forever, through the next URL."""
    connect_timeout: timedelta = timedelta(seconds=10)
    """How long one connection attempt may take before the next URL is tried."""

    @property
    def urls(self) -> tuple[str, ...]:
        """The URLs of ``url``, in order (one, for a single broker).

        Raises
        ------
        AmqpUrlError
            ``url`` names no URL.
        """
        return split_amqp_urls(self.url)


@frozen
class ExchangeSpec:
    """A durable exchange; ``alternate`` receives what no binding routes (RabbitMQ's
    ``alternate-exchange`` argument)."""

    name: str
    type: str
    alternate: str | None = None

    @property
    def arguments(self) -> dict[str, Any]:
        """The declaration's arguments."""
        return {} if self.alternate is None else {"alternate-exchange": self.alternate}


@frozen
class QueueSpec:
    """A durable queue, its arguments and its bindings ``(exchange, routing key)``."""

    name: str
    arguments: Mapping[str, Any] = field(factory=dict)
    bindings: tuple[tuple[str, str], ...] = ()


@frozen
class InboundQueue:
    """A work queue the worker consumes, the routing keys bound to it and its delay queue."""

    name: str
    delay_queue: str
    routing_keys: tuple[str, ...]
    single_active_consumer: bool = False


@frozen
class Topology:
    """Everything the worker declares at start."""

    exchange: str
    dead_exchange: str
    dead_queue: str
    inbound: tuple[InboundQueue, ...]
    exchanges: tuple[ExchangeSpec, ...]
    queues: tuple[QueueSpec, ...]

    def queue_for(self, routing_key: str) -> InboundQueue:
        """The work queue a routing key is bound to."""
        for queue in self.inbound:
            if routing_key in queue.routing_keys:
                return queue
        raise BrokerError(f"no work queue is bound to routing key {routing_key!r}")

    def without_alternate(self) -> Topology:
        """The same topology with exchanges declared as before alternate exchanges existed
        (for an exchange an older version created: its arguments cannot change in place)."""
        plain = tuple(ExchangeSpec(x.name, x.type) for x in self.exchanges)
        return evolve(self, exchanges=plain)

    def spec(self, name: str) -> QueueSpec:
        """The declaration of one queue."""
        for queue in self.queues:
            if queue.name == name:
                return queue
        raise BrokerError(f"queue {name!r} is not part of the topology")


_QUORUM = {
    "x-queue-type": "quorum",
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}


_DISCARD = {"x-queue-type": "classic", "x-max-length": 0, "x-overflow": "drop-head"}

Consumer = Literal["worker", "bridge"]
"""Which process consumes: ``imageledger run`` or ``imageledger kube``."""

CONSUMERS: dict[Consumer, tuple[tuple[str, tuple[str, ...], bool], ...]] = {
    # A node's deletion shares its inventories' queue: both are decided against the node
    # as known, in arrival order.
    "worker": (
        ("refresh", (RefreshRequested.ROUTING_KEY,), True),
        ("pod_completed", (PodCompleted.ROUTING_KEY,), False),
        ("node_inventory", (NodeInventory.ROUTING_KEY, NodeGoneMessage.ROUTING_KEY), False),
    ),
    # The bridge's requests: a queue of its own next to the discard queue, which takes
    # them too (an outbound key), so nothing changes for the alternate exchange.
    "bridge": (("bridge.prepull_requested", (PrepullRequestedMessage.ROUTING_KEY,), False),),
}
"""The work queues of each consumer, as (name suffix, routing keys, single active consumer)."""


def _work_queues(prefix: str, consumer: Consumer) -> tuple[InboundQueue, ...]:
    return tuple(
        InboundQueue(f"{prefix}.{suffix}", f"{prefix}.{suffix}.delay", keys, single)
        for suffix, keys, single in CONSUMERS[consumer]
    )


def build_topology(
    prefix: str = "imageledger", delivery_limit: int = 20, consumer: Consumer = "worker"
) -> Topology:
    """The topology one consumer declares for one name prefix: the exchanges, the dead
    and discard queues, its own work queues (``CONSUMERS``), and, for the bridge, the
    worker's too, so that what it reports waits for a worker that starts later.

    Work queues are quorum queues whose own dead-letter exchange is the dead exchange (used
    by the broker when ``x-delivery-limit`` is exceeded); each has a delay queue that
    dead-letters expired messages back to it through the default exchange. Dead-lettering
    is at-least-once, so a message moving between queues is never lost. The dead exchange
    is also the main exchange's alternate exchange: a message whose routing key no queue is
    bound to (a typo such as ``prepull.pod_complete``) lands in the dead-letter queue
    instead of vanishing.
    """
    dead = f"{prefix}.dead"
    inbound = _work_queues(prefix, consumer)
    declared = inbound if consumer == "worker" else (*inbound, *_work_queues(prefix, "worker"))
    queues: list[QueueSpec] = []
    for queue in declared:
        work = {**_QUORUM, "x-dead-letter-exchange": dead, "x-delivery-limit": delivery_limit}
        if queue.single_active_consumer:
            work["x-single-active-consumer"] = True
        bindings = tuple((prefix, key) for key in queue.routing_keys)
        queues.append(QueueSpec(queue.name, work, bindings))
        delay = {**_QUORUM, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue.name}
        queues.append(QueueSpec(queue.delay_queue, delay))
    queues.append(QueueSpec(dead, {"x-queue-type": "quorum"}, ((dead, ""),)))
    # Our own outbound messages are routable even when nobody subscribes to them: a queue
    # that keeps nothing takes them, so the alternate exchange sees only unknown keys.
    outbound = tuple((prefix, key) for key in sorted(OUTBOUND_MESSAGES))
    queues.append(QueueSpec(f"{prefix}.outbound.discard", _DISCARD, outbound))
    return Topology(
        exchange=prefix,
        dead_exchange=dead,
        dead_queue=dead,
        inbound=inbound,
        exchanges=(ExchangeSpec(prefix, "topic", alternate=dead), ExchangeSpec(dead, "fanout")),
        queues=tuple(queues),
    )


async def declare_queue(channel: AbstractChannel, spec: QueueSpec) -> aio_pika.abc.AbstractQueue:
    """Declare one queue (idempotent); a queue of the same name but other arguments is an
    error naming it."""
    try:
        return await channel.declare_queue(spec.name, durable=True, arguments=dict(spec.arguments))
    except aio_pika.exceptions.ChannelPreconditionFailed as exc:
        raise BrokerError(f"queue {spec.name!r} exists with other arguments: {exc}") from exc


class AlternateExchangeMissingError(BrokerError):
    """The exchange exists without its alternate exchange (an older version declared it);
    the channel that tried is closed."""


async def declare_topology(channel: AbstractChannel, topology: Topology) -> None:
    """Declare exchanges, queues and bindings; declaring twice changes nothing."""
    exchanges = {}
    for spec in topology.exchanges:
        try:
            exchanges[spec.name] = await channel.declare_exchange(
                spec.name, spec.type, durable=True, arguments=spec.arguments
            )
        except aio_pika.exceptions.ChannelPreconditionFailed as exc:
            if spec.alternate is not None and "alternate-exchange" in str(exc):
                raise AlternateExchangeMissingError(
                    f"exchange {spec.name!r} exists without alternate exchange "
                    f"{spec.alternate!r}: {exc}"
                ) from exc
            raise BrokerError(f"exchange {spec.name!r} exists with another type: {exc}") from exc
    for queue_spec in topology.queues:
        queue = await declare_queue(channel, queue_spec)
        for exchange, routing_key in queue_spec.bindings:
            await queue.bind(exchanges[exchange], routing_key)
    log.info("broker topology declared", exchange=topology.exchange, queues=len(topology.queues))


@frozen
class QueueState:
    """A queue as RabbitMQ reports it now: whether it exists, the messages ready in it and
    the consumers attached."""

    name: str
    exists: bool
    messages: int = 0
    consumers: int = 0


async def queue_state(connection: AbstractConnection, name: str) -> QueueState:
    """Look at a queue without declaring it (a passive declare, on a channel of its own:
    asking for a missing queue closes the channel that asked)."""
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return QueueState(name, exists=False)
    finally:
        if not channel.is_closed:
            await channel.close()
    result = queue.declaration_result
    return QueueState(name, True, int(result.message_count or 0), int(result.consumer_count or 0))


async def exchange_exists(connection: AbstractConnection, name: str) -> bool:
    """Whether an exchange exists (a passive declare on a channel of its own)."""
    channel = await connection.channel()
    try:
        await channel.get_exchange(name, ensure=True)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        if not channel.is_closed:
            await channel.close()
    return True


class BrokerMetrics(Protocol):
    """Hooks for counters and histograms (the factory wires Prometheus to them); queues
    are named without the prefix (``pod_completed``)."""

    def consumed(self, queue: str, count: int) -> None:
        """``count`` messages were decoded and handed to the handler."""

    def dead_lettered(self, routing_key: str, reason: str, count: int) -> None:
        """``count`` messages of ``routing_key`` went to the dead-letter queue; ``reason``
        is one of `DEAD_LETTER_REASONS`."""

    def retried(self, queue: str, count: int) -> None:
        """``count`` messages went to the delay queue for a later attempt."""

    def batch_handled(self, queue: str, size: int, seconds: float) -> None:
        """The handler returned for a batch of ``size`` messages after ``seconds``."""

    def published(self, routing_key: str, count: int) -> None:
        """``count`` messages were published and confirmed."""


class NoMetrics:
    """Metrics hooks that record nothing."""

    def consumed(self, queue: str, count: int) -> None:
        """Record nothing."""

    def dead_lettered(self, routing_key: str, reason: str, count: int) -> None:
        """Record nothing."""

    def retried(self, queue: str, count: int) -> None:
        """Record nothing."""

    def batch_handled(self, queue: str, size: int, seconds: float) -> None:
        """Record nothing."""

    def published(self, routing_key: str, count: int) -> None:
        """Record nothing."""
