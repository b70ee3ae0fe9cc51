"""RabbitMQ through aio-pika: one robust connection, topology, confirmed publishes, consumers.

The connection takes one URL or a cluster's comma-separated URLs: the first connection
tries them in turn (with back-off between rounds); after a loss it reconnects through the
next node that answers, and its channels, consumers and publisher confirms come back there.

No aio-pika object leaves this adapter (and its ``broker_topology`` and ``broker_consumer``
modules): callers hand in bytes, routing keys, message ids and async handlers of decoded
``Delivery`` batches, and get our exceptions back (``BrokerError``,
``BrokerUnavailableError``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from worker.adapters.broker.consumer import (
    Admission,
    BatchConsumer,
    BatchHandler,
    body_message_id,
    queue_label,
)
from worker.adapters.broker.failover import FailoverConnection
from worker.adapters.broker.topology import (
    ATTEMPT_HEADER,
    AUTHENTICATION_FAILED,
    CONNECTION_LOST,
    QUEUE_HEADER,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    UNREACHABLE,
    AlternateExchangeMissingError,
    BrokerError,
    BrokerMetrics,
    BrokerSettings,
    BrokerUnavailableError,
    Consumer,
    NoMetrics,
    QueueState,
    Topology,
    amqp_url,
    build_topology,
    declare_topology,
    queue_state,
)
from worker.adapters.broker.urls import safe_amqp_url
from worker.converter import encode_message
from worker.domain.errors import TransientError
from worker.domain.messages import InboundMessage, OutboundMessage

__all__ = [
    "ATTEMPT_HEADER",
    "QUEUE_HEADER",
    "REASON_HEADER",
    "ROUTING_KEY_HEADER",
    "Admission",
    "BatchHandler",
    "Broker",
    "BrokerError",
    "BrokerMetrics",
    "BrokerSettings",
    "BrokerUnavailableError",
    "NoMetrics",
    "Topology",
    "amqp_url",
    "body_message_id",
    "build_topology",
    "safe_amqp_url",
]

CONTENT_TYPE = "application/json"

log = structlog.get_logger(__name__)


class Broker:
    """A process's RabbitMQ: connect once (``connect``), declare the topology (the
    worker's, or with ``consumer="bridge"`` the bridge's), publish with confirms, run one
    batch consumer per work queue, and close gracefully."""

    def __init__(
        self,
        settings: BrokerSettings,
        metrics: BrokerMetrics | None = None,
        *,
        consumer: Consumer = "worker",
    ) -> None:
        self._settings = settings
        self._metrics: BrokerMetrics = metrics or NoMetrics()
        self._topology = build_topology(settings.prefix, settings.delivery_limit, consumer)
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consumers: list[BatchConsumer] = []
        self._declared = self._topology
        self._background: set[asyncio.Task[None]] = set()

    @property
    def topology(self) -> Topology:
        """The exchanges and queues this broker declares."""
        return self._topology

    @property
    def connected(self) -> bool:
        """Whether the connection is up right now (for ``/healthz``); false while a
        dropped connection is being re-established."""
        connection = self._connection
        return connection is not None and not connection.is_closed and connection.connected.is_set()

    def consumer_counts(self) -> dict[str, int]:
        """Consumers held per work queue (named without the prefix), 0 while the
        connection is down."""
        counts = {queue_label(self._topology, q.name): 0 for q in self._topology.inbound}
        if self.connected:
            for consumer in self._consumers:
                counts[queue_label(self._topology, consumer.queue)] += 1
        return counts

    async def connect(self) -> None:
        """Connect (retrying with back-off), declare the topology, open the publisher."""
        if self._connection is not None:
            return
        connection = await self._connect()
        try:
            self._declared = await self._declare(connection)
            channel = await connection.channel(publisher_confirms=True)
            self._exchange = await channel.get_exchange(self._topology.exchange, ensure=False)
        except BaseException:
            await connection.close()
            raise
        connection.reconnect_callbacks.add(self._on_reconnected)
        self._connection, self._channel = connection, channel

    async def _declare(self, connection: AbstractRobustConnection) -> Topology:
        """Declare the topology; returns what was declared. An exchange an older version
        created keeps working without its alternate exchange, with a warning: its
        arguments cannot change while it exists."""
        try:
            await _declare_on_own_channel(connection, self._topology)
            return self._topology
        except AlternateExchangeMissingError as exc:
            log.warning(
                "unroutable messages are dropped: the exchange predates its alternate exchange;"
                " stop the workers, delete the exchange once and start them again",
                exchange=self._topology.exchange,
                error=str(exc),
            )
        plain = self._topology.without_alternate()
        await _declare_on_own_channel(connection, plain)
        return plain

    def _on_reconnected(self, connection: AbstractRobustConnection | None, /) -> None:
        """After a reconnection (maybe to another node of a cluster), once the channels
        and consumers are back: declare the topology again, in the background."""
        if connection is None:
            return
        task = asyncio.create_task(self._redeclare_quietly(connection), name="redeclare")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _redeclare_quietly(self, connection: AbstractRobustConnection) -> None:
        try:
            await _declare_on_own_channel(connection, self._declared)
        except (BrokerError, aio_pika.exceptions.AMQPError, *UNREACHABLE) as exc:
            log.warning(
                "topology not declared again after reconnecting (a node of the cluster may be"
                " down); the declared topology stays in use",
                exchange=self._topology.exchange,
                error=str(exc) or type(exc).__name__,
            )

    async def _connect(self) -> AbstractRobustConnection:
        """The first connection: every URL in turn, then back off and start over, for
        ``connect_attempts`` rounds. The connection made then walks the list by itself
        after a loss (``FailoverConnection``)."""
        urls = self._settings.urls
        delay = self._settings.reconnect_delay.total_seconds()
        for attempt in range(1, self._settings.connect_attempts + 1):
            errors: list[str] = []
            last: BaseException | None = None
            for index, url in enumerate(urls):
                try:
                    return await self._open(urls, index)
                except AUTHENTICATION_FAILED as exc:
                    raise BrokerError(
                        f"RabbitMQ at {safe_amqp_url(url)} refused login: {exc}"
                    ) from exc
                except UNREACHABLE as exc:
                    last, error = exc, str(exc) or type(exc).__name__
                    errors.append(error if len(urls) == 1 else f"{safe_amqp_url(url)}: {error}")
            where = safe_amqp_url(self._settings.url)
            if attempt == self._settings.connect_attempts:
                raise BrokerUnavailableError(
                    f"RabbitMQ at {where} unreachable after {attempt} attempts: "
                    + "; ".join(errors)
                ) from last
            log.warning(
                "broker unreachable; retrying",
                url=where,
                attempt=attempt,
                delay=delay,
                error="; ".join(errors),
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.max_reconnect_delay.total_seconds())
        raise BrokerUnavailableError(
            f"RabbitMQ at {safe_amqp_url(self._settings.url)}: no connection attempts"
        )

    async def _open(self, urls: tuple[str, ...], index: int) -> AbstractRobustConnection:
        """A robust connection through ``urls[index]``, or the attempt's error."""
        connection = FailoverConnection(
            urls,
            index,
            reconnect_interval=self._settings.reconnect_delay.total_seconds(),
            client_properties={"connection_name": f"imageledger {self._topology.exchange}"},
        )
        try:
            await connection.connect(timeout=self._settings.connect_timeout.total_seconds())
        except BaseException:
            await connection.close()
            raise
        return connection

    async def publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Publish a persistent JSON message to the topic exchange and wait for the
        broker's confirmation; raise BrokerUnavailableError or BrokerError otherwise."""
        if self._exchange is None:
            raise BrokerError("the broker is not connected (call connect() first)")
        message = aio_pika.Message(
            body,
            headers=dict(headers or {}),
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
        )
        try:
            await self._exchange.publish(message, routing_key, mandatory=False)
        except CONNECTION_LOST as exc:
            raise BrokerUnavailableError(f"cannot publish {routing_key}: {exc}") from exc
        except aio_pika.exceptions.AMQPError as exc:
            raise BrokerError(f"cannot publish {routing_key}: {exc}") from exc
        self._metrics.published(routing_key, 1)

    async def publish_message(
        self, message: InboundMessage | OutboundMessage, *, message_id: str
    ) -> None:
        """Encode a message through the converter and publish it under its routing key."""
        await self.publish(message.ROUTING_KEY, encode_message(message), message_id=message_id)

    async def consume(
        self,
        routing_key: str,
        handler: BatchHandler,
        *,
        transient: tuple[type[BaseException], ...] = (TransientError,),
        outage: str = "database",
        admit: Admission | None = None,
    ) -> None:
        """Start a batch consumer on the work queue bound to ``routing_key``.

        ``handler`` gets lists of ``Delivery`` and must commit before returning; it raises
        one of ``transient`` (database away) to have the whole batch held — not
        acknowledged, no attempt counted, consuming paused — and handed to it again with
        back-off until it commits; ``DeliveriesRejected`` to have the messages it names
        dead-lettered at once and the rest handled again; anything else to have the failing
        messages isolated and retried through the delay queue up to ``max_attempts``
        times, then dead-lettered. ``admit``, if given, sees each decoded delivery first
        and raises MessageRejected to dead-letter it on arrival.
        ``outage`` names, in the log, what a held batch waits for.
        """
        if self._connection is None:
            raise BrokerError("the broker is not connected (call connect() first)")
        queue = self._topology.queue_for(routing_key)
        consumer = BatchConsumer(
            self._topology,
            queue,
            handler,
            self._settings,
            self._metrics,
            transient,
            outage,
            admit,
        )
        await consumer.start(self._connection)
        self._consumers.append(consumer)

    async def stop_consuming(self) -> None:
        """Stop every consumer: finish and acknowledge the batch in hand, then close."""
        consumers, self._consumers = self._consumers, []
        await asyncio.gather(*(c.stop() for c in consumers))

    async def queue_state(self, name: str) -> QueueState:
        """A queue's messages ready and consumers now, without declaring it.

        Raises BrokerError when not connected, BrokerUnavailableError when the connection
        is lost.
        """
        if self._connection is None:
            raise BrokerError("the broker is not connected (call connect() first)")
        try:
            return await queue_state(self._connection, name)
        except CONNECTION_LOST as exc:
            raise BrokerUnavailableError(f"cannot look at queue {name!r}: {exc}") from exc
        except aio_pika.exceptions.AMQPError as exc:
            raise BrokerError(f"cannot look at queue {name!r}: {exc}") from exc

    async def close(self) -> None:
        """Stop consuming, then close the connection."""
        await self.stop_consuming()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._channel = self._exchange = None
        log.info("broker connection closed", url=safe_amqp_url(self._settings.url))


async def _declare_on_own_channel(connection: AbstractRobustConnection, topology: Topology) -> None:
    """Declare ``topology`` on a plain channel of its own, closed afterwards.

    Not on a robust channel that stays open: that one would declare everything again by
    itself at each reconnection, before its consumers come back, and a classic queue whose
    node is down (the outbound discard queue of a cluster) would then stop the reconnection
    to a surviving node. The broker's own reconnection callback declares it again instead,
    and a failure there is only a warning.
    """
    channel = aio_pika.Channel(connection, publisher_confirms=False)
    await channel.initialize()
    try:
        await declare_topology(channel, topology)
    finally:
        if not channel.is_closed:
            await channel.close()
