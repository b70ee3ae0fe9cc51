"""RabbitMQ through aio-pika: one robust connection, topology, confirmed publishes, consumers.

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
from yarl import URL

from worker.adapters.broker.consumer import (
    Admission,
    BatchConsumer,
    BatchHandler,
    body_message_id,
)
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
    NoMetrics,
    Topology,
    amqp_url,
    build_topology,
    declare_topology,
)
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


def safe_amqp_url(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else str(parsed)


class Broker:
    """The worker's RabbitMQ: connect once (``connect``), declare the topology, publish
    with confirms, run one batch consumer per work queue, and close gracefully."""

    def __init__(self, settings: BrokerSettings, metrics: BrokerMetrics | None = None) -> None:
        self._settings = settings
        self._metrics: BrokerMetrics = metrics or NoMetrics()
        self._topology = build_topology(settings.prefix, settings.delivery_limit)
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consumers: list[BatchConsumer] = []

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

    async def connect(self) -> None:
        """Connect (retrying with back-off), declare the topology, open the publisher."""
        if self._connection is not None:
            return
        connection = await self._connect()
        try:
            channel = await self._declared_channel(connection)
            self._exchange = await channel.get_exchange(self._topology.exchange)
        except BaseException:
            await connection.close()
            raise
        self._connection, self._channel = connection, channel

    async def _declared_channel(self, connection: AbstractRobustConnection) -> AbstractChannel:
        """A publisher channel on which the topology is declared. An exchange an older
        version created keeps working without its alternate exchange, with a warning: its
        arguments cannot change while it exists."""
        channel = await connection.channel(publisher_confirms=True)
        try:
            await declare_topology(channel, self._topology)
        except AlternateExchangeMissingError as exc:
            log.warning(
                "unroutable messages are dropped: the exchange predates its alternate exchange;"
                " stop the workers, delete the exchange once and start them again",
                exchange=self._topology.exchange,
                error=str(exc),
            )
            channel = await connection.channel(publisher_confirms=True)
            await declare_topology(channel, self._topology.without_alternate())
        return channel

    async def _connect(self) -> AbstractRobustConnection:
        url = self._settings.url
        delay = self._settings.reconnect_delay.total_seconds()
        for attempt in range(1, self._settings.connect_attempts + 1):
            try:
                return await aio_pika.connect_robust(
                    url,
                    reconnect_interval=self._settings.reconnect_delay.total_seconds(),
                    client_properties={"connection_name": f"imageledger {self._topology.exchange}"},
                )
            except AUTHENTICATION_FAILED as exc:
                raise BrokerError(f"RabbitMQ at {safe_amqp_url(url)} refused login: {exc}") from exc
            except UNREACHABLE as exc:
                if attempt == self._settings.connect_attempts:
                    raise BrokerUnavailableError(
                        f"RabbitMQ at {safe_amqp_url(url)} unreachable after {attempt} "
                        f"attempts: {exc}"
                    ) from exc
                log.warning(
                    "broker unreachable; retrying",
                    url=safe_amqp_url(url),
                    attempt=attempt,
                    delay=delay,
                    error=str(exc),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._settings.max_reconnect_delay.total_seconds())
        raise BrokerUnavailableError(f"RabbitMQ at {safe_amqp_url(url)}: no connection attempts")

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
        """
        if self._connection is None:
            raise BrokerError("the broker is not connected (call connect() first)")
        queue = self._topology.queue_for(routing_key)
        consumer = BatchConsumer(
            self._topology, queue, handler, self._settings, self._metrics, transient, admit
        )
        await consumer.start(self._connection)
        self._consumers.append(consumer)

    async def stop_consuming(self) -> None:
        """Stop every consumer: finish and acknowledge the batch in hand, then close."""
        consumers, self._consumers = self._consumers, []
        await asyncio.gather(*(c.stop() for c in consumers))

    async def close(self) -> None:
        """Stop consuming, then close the connection."""
        await self.stop_consuming()
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._channel = self._exchange = None
        log.info("broker connection closed", url=safe_amqp_url(self._settings.url))
