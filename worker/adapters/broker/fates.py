"""Where a message goes when it is not acknowledged: the delay queue for another attempt,
or the dead-letter queue with the reason; both as persistent copies the broker confirms."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from worker.adapters.broker.topology import (
    ATTEMPT_HEADER,
    DEAD_AT_HEADER,
    QUEUE_HEADER,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    BrokerMetrics,
    BrokerSettings,
    InboundQueue,
    Topology,
)
from worker.domain.errors import MessageRejected
from worker.domain.messages import INBOUND_MESSAGES, Delivery

__all__ = [
    "JSON",
    "LOST",
    "MAX_REASON_LENGTH",
    "REFUSED",
    "Fates",
    "attempt_of",
    "body_message_id",
    "check_content_type",
    "queue_label",
    "text_header",
]

JSON = "application/json"
"""The only content type the worker accepts (RFC 8259: JSON is UTF-8)."""

MAX_REASON_LENGTH = 1000
LOST = (
    aio_pika.exceptions.ChannelInvalidStateError,
    aio_pika.exceptions.ChannelClosed,
    aio_pika.exceptions.AMQPConnectionError,
    ConnectionError,
)
REFUSED = (aio_pika.exceptions.DeliveryError, aio_pika.exceptions.PublishError)

log = structlog.get_logger(__name__)


def body_message_id(body: bytes) -> str:
    """The id of a message published without one: a hash of its body."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def queue_label(topology: Topology, name: str) -> str:
    """A queue's name without the broker prefix (``pod_completed``), for metrics."""
    return name.removeprefix(f"{topology.exchange}.")


def text_header(value: Any) -> str | None:
    """A header's text (bytes decoded), or None."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def attempt_of(value: Any) -> int:
    """The attempt a header counts (1 when absent or not a positive integer)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return 1
    return value


def _copied_headers(message: AbstractIncomingMessage) -> dict[str, Any]:
    """The headers a retry or dead-letter copy keeps (the broker's delivery count is the
    original's, not the copy's)."""
    return {k: v for k, v in (message.headers or {}).items() if k != "x-delivery-count"}


def check_content_type(content_type: str | None) -> None:
    """``application/json`` (a ``charset=utf-8`` parameter allowed), else MessageRejected."""
    media, _, parameters = (content_type or "").partition(";")
    charset = parameters.strip().lower().replace(" ", "")
    if media.strip().lower() != JSON or charset not in ("", "charset=utf-8"):
        got = repr(content_type) if content_type else "none"
        raise MessageRejected(f"content type must be {JSON}, got {got}")


class Fates:
    """The copies a work queue's consumer publishes on its own channel (``channel``, set
    when it starts)."""

    def __init__(
        self,
        topology: Topology,
        queue: InboundQueue,
        settings: BrokerSettings,
        metrics: BrokerMetrics,
        label: str,
    ) -> None:
        self._topology = topology
        self._queue = queue
        self._settings = settings
        self._metrics = metrics
        self._label = label
        self.channel: AbstractChannel | None = None

    async def retry(
        self, message: AbstractIncomingMessage, delivery: Delivery, error: BaseException
    ) -> None:
        """Another attempt through the delay queue, or the dead-letter queue after the last."""
        reason = f"{type(error).__name__}: {error}"
        if delivery.attempt >= self._settings.max_attempts:
            await self.dead_letter(
                message, f"gave up after {delivery.attempt} attempts: {reason}", delivery
            )
            return
        delay = min(
            self._settings.retry_delay * 2 ** (delivery.attempt - 1),
            self._settings.max_retry_delay,
        )
        headers = {
            **_copied_headers(message),
            ATTEMPT_HEADER: delivery.attempt + 1,
            ROUTING_KEY_HEADER: delivery.routing_key,
            REASON_HEADER: reason[:MAX_REASON_LENGTH],
        }
        await self._copy(message, headers, delivery.message_id, "", self._queue.delay_queue, delay)
        self._metrics.retried(self._label, 1)
        log.info(
            "message delayed for another attempt",
            queue=self._queue.name,
            message_id=delivery.message_id,
            routing_key=delivery.routing_key,
            attempt=delivery.attempt + 1,
            delay=delay.total_seconds(),
            reason=reason,
        )

    async def dead_letter(
        self, message: AbstractIncomingMessage, reason: str, delivery: Delivery | None = None
    ) -> None:
        """A copy with the reason in its headers to the dead-letter exchange."""
        headers = message.headers or {}
        routing_key = (
            delivery.routing_key
            if delivery
            else text_header(headers.get(ROUTING_KEY_HEADER)) or message.routing_key or ""
        )
        message_id = delivery.message_id if delivery else message.message_id
        message_id = message_id or body_message_id(message.body)
        dead_headers = {
            **_copied_headers(message),
            REASON_HEADER: reason[:MAX_REASON_LENGTH],
            ROUTING_KEY_HEADER: routing_key,
            QUEUE_HEADER: self._queue.name,
            DEAD_AT_HEADER: datetime.now(UTC).isoformat(timespec="seconds"),
        }
        await self._copy(
            message, dead_headers, message_id, self._topology.dead_exchange, routing_key, None
        )
        kind = self._dead_letter_class(routing_key, delivery)
        known_key = routing_key if routing_key in INBOUND_MESSAGES else "other"
        self._metrics.dead_lettered(known_key, kind, 1)
        log.warning(
            "message dead-lettered",
            queue=self._queue.name,
            message_id=message_id,
            routing_key=routing_key,
            reason_class=kind,
            attempt=delivery.attempt if delivery else attempt_of(headers.get(ATTEMPT_HEADER)),
            reason=reason,
        )

    def _dead_letter_class(self, routing_key: str, delivery: Delivery | None) -> str:
        """``gave_up`` (handled, failed every attempt), else ``invalid``, or ``unroutable``
        when the routing key is not one of this queue's."""
        if delivery is not None:
            return "gave_up"
        return "invalid" if routing_key in self._queue.routing_keys else "unroutable"

    async def _copy(
        self,
        message: AbstractIncomingMessage,
        headers: dict[str, Any],
        message_id: str,
        exchange: str,
        routing_key: str,
        expiration: Any,
    ) -> None:
        """Publish a persistent copy and wait for the broker's confirmation."""
        assert self.channel is not None
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            expiration=expiration,
        )
        target = (
            await self.channel.get_exchange(exchange, ensure=False)
            if exchange
            else self.channel.default_exchange
        )
        await target.publish(copy, routing_key, mandatory=True)
