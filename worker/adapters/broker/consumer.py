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

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from worker.adapters.broker.fates import (
    LOST,
    REFUSED,
    Fates,
    attempt_of,
    body_message_id,
    check_content_type,
    queue_label,
    text_header,
)
from worker.adapters.broker.topology import (
    ATTEMPT_HEADER,
    ROUTING_KEY_HEADER,
    BrokerMetrics,
    BrokerSettings,
    InboundQueue,
    Topology,
    declare_queue,
)
from worker.converter import decode_delivery
from worker.domain.errors import MessageRejected, TransientError
from worker.domain.messages import DeliveriesRejected, Delivery

__all__ = ["Admission", "BatchConsumer", "BatchHandler", "body_message_id", "queue_label"]

log = structlog.get_logger(__name__)

BatchHandler = Callable[[list[Delivery]], Awaitable[None]]
"""Handles a batch in one transaction; returns once it committed, raises to retry."""
Admission = Callable[[Delivery], None]
"""Checks a decoded delivery before it is handled; raises MessageRejected to dead-letter it
on its first arrival (a time too far ahead of the worker's clock)."""


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
        self._fates = Fates(topology, queue, settings, metrics, self._label)

    @property
    def queue(self) -> str:
        """The work queue's name."""
        return self._queue.name

    async def start(self, connection: AbstractRobustConnection) -> None:
        """Open the channel, start consuming and start the batch loop."""
        self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._fates.channel = self._channel
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
        except LOST as exc:
            log.warning(
                "broker connection lost mid-batch; the broker redelivers it",
                queue=self._queue.name,
                count=len(live),
                error=str(exc),
            )
            return
        except REFUSED as exc:
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
                await self._fates.dead_letter(message, exc.reason)
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
            await self._fates.retry(message, delivery, error)

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
        routing_key = text_header(headers.get(ROUTING_KEY_HEADER)) or message.routing_key or ""
        if routing_key not in self._queue.routing_keys:
            raise MessageRejected(
                f"unknown routing key {routing_key!r} for queue {self._queue.name!r}"
            )
        check_content_type(message.content_type)
        body_hash = hashlib.sha256(message.body).hexdigest()
        delivery = Delivery(
            message=decode_delivery(routing_key, message.body),
            message_id=message.message_id or f"sha256:{body_hash}",
            routing_key=routing_key,
            attempt=attempt_of(headers.get(ATTEMPT_HEADER)),
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
                    await self._fates.dead_letter(message, exc.reasons[i], delivery)
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

    async def _return(self, last: AbstractIncomingMessage) -> None:
        """Hand a batch whose fate could not be secured back to the broker (counted
        against the queue's delivery limit); the caller backs off before the next batch."""
        try:
            await last.nack(multiple=True, requeue=True)
        except LOST:
            return

    async def _back_off(self) -> None:
        base = self._settings.retry_delay.total_seconds()
        ceiling = self._settings.max_retry_delay.total_seconds()
        self._pause = min(max(self._pause * 2, base), ceiling)
        try:
            await asyncio.wait_for(self._stopping.wait(), self._pause)
        except TimeoutError:
            return
