"""The batch consumer: decode, hand a batch to the handler, then ack, delay or dead-letter.

Every message gets exactly one fate, and the original is acknowledged only once that fate
is secured: handled (the handler returned, so its transaction committed), copied to the
delay queue for a later attempt, or copied to the dead-letter queue with its reason — each
copy confirmed by the broker first. A crash before the ack hands the messages back to the
broker, which redelivers them; nothing is ever requeued hot after a failure.

A transient failure (database away) holds the batch: not acknowledged, not delayed, no
attempt counted; the handler gets it again with back-off until it commits, and consuming
pauses meanwhile. Only other failures count attempts towards the dead-letter queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

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
    declare_queue,
)
from worker.converter import decode_delivery
from worker.domain.errors import MessageRejected, TransientError
from worker.domain.messages import INBOUND_MESSAGES, DeliveriesRejected, Delivery

__all__ = ["Admission", "BatchConsumer", "BatchHandler", "body_message_id", "queue_label"]

BatchHandler = Callable[[list[Delivery]], Awaitable[None]]
"""Handles a batch in one transaction; returns once it committed, raises to retry."""
Admission = Callable[[Delivery], None]
"""Checks a decoded delivery before it is handled; raises MessageRejected to dead-letter it
on its first arrival (a time too far ahead of the worker's clock)."""

JSON = "application/json"
"""The only content type the worker accepts (RFC 8259: JSON is UTF-8)."""

MAX_REASON_LENGTH = 1000
_LOST = (
    aio_pika.exceptions.ChannelInvalidStateError,
    aio_pika.exceptions.ChannelClosed,
    aio_pika.exceptions.AMQPConnectionError,
    ConnectionError,
)
_REFUSED = (aio_pika.exceptions.DeliveryError, aio_pika.exceptions.PublishError)

log = structlog.get_logger(__name__)


def body_message_id(body: bytes) -> str:
    """The id of a message published without one: a hash of its body."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def queue_label(topology: Topology, name: str) -> str:
    """A queue's name without the broker prefix (``pod_completed``), for metrics."""
    return name.removeprefix(f"{topology.exchange}.")


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _attempt(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return 1
    return value


def _copied_headers(message: AbstractIncomingMessage) -> dict[str, Any]:
    """The headers a retry or dead-letter copy keeps (the broker's delivery count is the
    original's, not the copy's)."""
    return {k: v for k, v in (message.headers or {}).items() if k != "x-delivery-count"}


def _check_content_type(content_type: str | None) -> None:
    """``application/json`` (a ``charset=utf-8`` parameter allowed), else MessageRejected."""
    media, _, parameters = (content_type or "").partition(";")
    charset = parameters.strip().lower().replace(" ", "")
    if media.strip().lower() != JSON or charset not in ("", "charset=utf-8"):
        got = repr(content_type) if content_type else "none"
        raise MessageRejected(f"content type must be {JSON}, got {got}")


def _is_live(message: AbstractIncomingMessage) -> bool:
    try:
        return not message.channel.is_closed
    except aio_pika.exceptions.ChannelInvalidStateError:
        return False


class _BatchAbandoned(Exception):
    """A held batch given up (stopping, channel lost): back to the broker, unacknowledged."""


class BatchConsumer:
    """Consumes one work queue in batches of up to ``batch_size`` messages or
    ``batch_timeout``, on a channel of its own with bounded prefetch."""

    def __init__(
        self,
        topology: Topology,
        queue: InboundQueue,
        handler: BatchHandler,
        settings: BrokerSettings,
        metrics: BrokerMetrics,
        transient: tuple[type[BaseException], ...] = (TransientError,),
        outage: str = "database",
        admit: Admission | None = None,
    ) -> None:
        self._outage = outage
        self._topology = topology
        self._admit = admit
        self._queue = queue
        self._label = queue_label(topology, queue.name)
        self._handler = handler
        self._settings = settings
        self._metrics = metrics
        self._transient = transient
        self._buffer: asyncio.Queue[AbstractIncomingMessage | None] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._channel: AbstractChannel | None = None
        self._task: asyncio.Task[None] | None = None
        self._pause = 0.0
        self._rejected: list[AbstractIncomingMessage] = []

    @property
    def queue(self) -> str:
        """The work queue's name."""
        return self._queue.name

    async def start(self, connection: AbstractRobustConnection) -> None:
        """Open the channel, start consuming and start the batch loop."""
        self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await self._channel.set_qos(prefetch_count=self._settings.prefetch)
        queue = await declare_queue(self._channel, self._topology.spec(self._queue.name))
        await queue.consume(self._buffer.put)
        self._task = asyncio.create_task(self._run(), name=f"consume {self._queue.name}")
        log.info("consuming", queue=self._queue.name, prefetch=self._settings.prefetch)

    async def stop(self) -> None:
        """Finish the batch in hand (handle, ack), then close the channel; messages that
        were buffered but not yet handled go back to the broker unacknowledged."""
        self._stopping.set()
        self._buffer.put_nowait(None)
        if self._task is not None:
            await self._task
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        log.info("stopped consuming", queue=self._queue.name)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            batch = await self._collect()
            if batch:
                await self._process(batch)

    async def _collect(self) -> list[AbstractIncomingMessage]:
        first = await self._buffer.get()
        if first is None:
            return []
        batch = [first]
        deadline = time.monotonic() + self._settings.batch_timeout.total_seconds()
        while len(batch) < self._settings.batch_size:
            remaining = deadline - time.monotonic()
            if self._buffer.empty() and remaining <= 0:
                break
            try:
                message = self._buffer.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    message = await asyncio.wait_for(self._buffer.get(), remaining)
                except TimeoutError:
                    break
            if message is None:
                break
            batch.append(message)
        return batch

    async def _process(self, batch: list[AbstractIncomingMessage]) -> None:
        live = [m for m in batch if _is_live(m)]
        if len(live) < len(batch):
            log.info(
                "dropped deliveries of a lost channel; the broker redelivers them",
                queue=self._queue.name,
                count=len(batch) - len(live),
            )
        if not live:
            return
        try:
            await self._settle(live)
            await live[-1].ack(multiple=True)
        except _BatchAbandoned as exc:
            log.warning(
                "held batch returned to the broker unacknowledged",
                queue=self._queue.name,
                count=len(live),
                reason=str(exc),
            )
            return
        except _LOST as exc:
            log.warning(
                "broker connection lost mid-batch; the broker redelivers it",
                queue=self._queue.name,
                count=len(live),
                error=str(exc),
            )
            return
        except _REFUSED as exc:
            log.error(
                "broker refused a retry or dead-letter copy; batch returned",
                queue=self._queue.name,
                count=len(live),
                error=str(exc),
            )
        except Exception:
            log.exception("batch failed unexpectedly; batch returned", queue=self._queue.name)
        else:
            self._pause = 0.0
            return
        await self._return(live[-1])
        await self._back_off()

    async def _settle(self, live: Sequence[AbstractIncomingMessage]) -> None:
        """Give every message its fate (all but the ack)."""
        accepted: list[tuple[AbstractIncomingMessage, Delivery]] = []
        rejected: list[AbstractIncomingMessage] = []
        self._rejected = rejected  # dead-lettered: by decoding, or by the handler
        for message in live:
            try:
                accepted.append((message, self._decode(message)))
            except MessageRejected as exc:
                await self._dead_letter(message, exc.reason)
                rejected.append(message)
        if not accepted:
            return
        self._metrics.consumed(self._label, len(accepted))
        try:
            failures = await self._handle_held(accepted)
        except _BatchAbandoned:
            for message in rejected:  # their dead-letter copies are confirmed
                await message.ack()
            raise
        for message, delivery, error in failures:
            await self._retry(message, delivery, error)

    async def _handle_held(
        self, items: list[tuple[AbstractIncomingMessage, Delivery]]
    ) -> list[tuple[AbstractIncomingMessage, Delivery, BaseException]]:
        """``_handle``, holding the batch while the handler fails transiently: wait
        (doubling) and try again, counting no attempt, until it commits. The first wait of
        an outage is a warning, the others debug lines, the end of it one info line.
        Raises _BatchAbandoned when stopping or when the deliveries' channel is lost."""
        wait = 0.0
        first = self._settings.outage_delay.total_seconds()
        ceiling = max(first, self._settings.max_outage_delay.total_seconds())
        while True:
            try:
                handled = await self._handle(items)
            except self._transient as exc:
                if self._stopping.is_set() or not _is_live(items[0][0]):
                    raise _BatchAbandoned(f"{type(exc).__name__}: {exc}") from exc
                say = log.warning if wait == 0.0 else log.debug
                wait = min(max(wait * 2, first), ceiling)
                say(
                    f"{self._outage} unavailable, retrying in {wait:g} s",
                    queue=self._queue.name,
                    count=len(items),
                    delay=wait,
                    error=str(exc),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), wait)
                continue
            if wait:
                log.info(f"{self._outage} available again", queue=self._queue.name)
            return handled

    def _decode(self, message: AbstractIncomingMessage) -> Delivery:
        headers = message.headers or {}
        routing_key = _text(headers.get(ROUTING_KEY_HEADER)) or message.routing_key or ""
        if routing_key not in self._queue.routing_keys:
            raise MessageRejected(
                f"unknown routing key {routing_key!r} for queue {self._queue.name!r}"
            )
        _check_content_type(message.content_type)
        body_hash = hashlib.sha256(message.body).hexdigest()
        delivery = Delivery(
            message=decode_delivery(routing_key, message.body),
            message_id=message.message_id or f"sha256:{body_hash}",
            routing_key=routing_key,
            attempt=_attempt(headers.get(ATTEMPT_HEADER)),
            body_sha256=body_hash,
        )
        if self._admit is not None:
            self._admit(delivery)
        return delivery

    async def _handle(
        self, items: list[tuple[AbstractIncomingMessage, Delivery]]
    ) -> list[tuple[AbstractIncomingMessage, Delivery, BaseException]]:
        """Run the handler; dead-letter what it rejects for good and run it on the rest; on
        another non-transient failure, halve the batch to isolate the messages that fail on
        their own. Returns those messages with their errors."""
        settled = {id(m) for m in self._rejected}
        items = [item for item in items if id(item[0]) not in settled]
        if not items:
            return []
        started = time.monotonic()
        try:
            await self._handler([d for _, d in items])
        except self._transient:
            raise
        except DeliveriesRejected as exc:
            if not set(exc.reasons) & set(range(len(items))):
                return await self._isolate(items, exc)
            for i, (message, delivery) in enumerate(items):
                if i in exc.reasons:
                    await self._dead_letter(message, exc.reasons[i], delivery)
                    self._rejected.append(message)
            return await self._handle(items)
        except Exception as exc:
            return await self._isolate(items, exc)
        self._metrics.batch_handled(self._label, len(items), time.monotonic() - started)
        return []

    async def _isolate(
        self, items: list[tuple[AbstractIncomingMessage, Delivery]], exc: Exception
    ) -> list[tuple[AbstractIncomingMessage, Delivery, BaseException]]:
        """The handler failed on ``items``: the failing one, or each half handled again."""
        if len(items) == 1:
            message, delivery = items[0]
            log.error(
                "handler failed",
                queue=self._queue.name,
                message_id=delivery.message_id,
                routing_key=delivery.routing_key,
                attempt=delivery.attempt,
                exc_info=exc,
            )
            return [(message, delivery, exc)]
        middle = len(items) // 2
        return await self._handle(items[:middle]) + await self._handle(items[middle:])

    async def _retry(
        self, message: AbstractIncomingMessage, delivery: Delivery, error: BaseException
    ) -> None:
        reason = f"{type(error).__name__}: {error}"
        if delivery.attempt >= self._settings.max_attempts:
            await self._dead_letter(
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

    async def _dead_letter(
        self, message: AbstractIncomingMessage, reason: str, delivery: Delivery | None = None
    ) -> None:
        headers = message.headers or {}
        routing_key = (
            delivery.routing_key
            if delivery
            else _text(headers.get(ROUTING_KEY_HEADER)) or message.routing_key or ""
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
            attempt=delivery.attempt if delivery else _attempt(headers.get(ATTEMPT_HEADER)),
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
        assert self._channel is not None
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            expiration=expiration,
        )
        target = (
            await self._channel.get_exchange(exchange, ensure=False)
            if exchange
            else self._channel.default_exchange
        )
        await target.publish(copy, routing_key, mandatory=True)

    async def _return(self, last: AbstractIncomingMessage) -> None:
        """Hand a batch whose fate could not be secured back to the broker (counted
        against the queue's delivery limit); the caller backs off before the next batch."""
        try:
            await last.nack(multiple=True, requeue=True)
        except _LOST:
            return

    async def _back_off(self) -> None:
        base = self._settings.retry_delay.total_seconds()
        ceiling = self._settings.max_retry_delay.total_seconds()
        self._pause = min(max(self._pause * 2, base), ceiling)
        try:
            await asyncio.wait_for(self._stopping.wait(), self._pause)
        except TimeoutError:
            return
