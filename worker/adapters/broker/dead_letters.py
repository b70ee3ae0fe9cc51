"""The dead-letter queue through aio-pika: look at dead letters, replay them, delete them.

How a look leaves the queue as it was: every ready message is taken with ``basic.get``
without acknowledgement (the broker hands each out once and keeps it), and those the
operation keeps go back with ``basic.nack(requeue=true)``, one by one in the order they were
taken. Taking them all, even to show a few, is what keeps the order: a quorum queue serves
returned messages first, in the order they came back. A dropped connection returns them too.

A quorum queue counts returns (``x-delivery-count``; RabbitMQ before 4.3 counts every
return), and from RabbitMQ 4.0 it drops a message returned 20 times by default. So when a
kept message has been returned ``refresh_after`` times, the kept messages are not returned
but copied to the queue in order (fresh messages: same body, id, properties and headers,
each confirmed by the broker) and only then acknowledged. Nothing is lost that way; a crash
between a copy and its acknowledgement leaves a duplicate, never a gap.

Replay republishes to the main exchange under the original routing key (persistent,
mandatory, publisher confirms; same message id and body; attempt reset to 1) and
acknowledges the dead letter only once the broker confirmed the copy. No aio-pika object
leaves this module; errors are ``BrokerError`` and ``BrokerUnavailableError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from worker.adapters.broker.consumer import body_message_id
from worker.adapters.broker.failover import connect_first
from worker.adapters.broker.topology import (
    ATTEMPT_HEADER,
    CONNECTION_LOST,
    DEAD_AT_HEADER,
    QUEUE_HEADER,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    BrokerError,
    BrokerUnavailableError,
    Topology,
    build_topology,
)
from worker.adapters.broker.urls import safe_amqp_url
from worker.domain.dead_letters import DeadLetter, ReplayReport

__all__ = ["DeadLetter", "DeadLetterQueue", "ReplayReport"]

DELIVERY_COUNT_HEADER = "x-delivery-count"
REFRESH_AFTER = 10
"""Returns after which a kept dead letter is copied to the tail instead (see above)."""
_DEAD_LETTER_HEADERS = (
    DEAD_AT_HEADER,
    REASON_HEADER,
    QUEUE_HEADER,
    DELIVERY_COUNT_HEADER,
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _count(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return value


def _broker_death(message: AbstractIncomingMessage) -> Mapping[str, Any] | None:
    """The newest ``x-death`` entry of a dead-lettering by RabbitMQ itself (a work queue's
    delivery limit); trips through a delay queue (reason ``expired``) do not count."""
    deaths = (message.headers or {}).get("x-death")
    for entry in deaths if isinstance(deaths, list) else []:
        if isinstance(entry, Mapping) and _text(entry.get("reason")) != "expired":
            return entry
    return None


def _aware(moment: Any) -> datetime | None:
    """A datetime (or an ISO 8601 text) with its zone, UTC when it has none."""
    text = _text(moment)
    if text is not None:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    if not isinstance(moment, datetime):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _dead_letter(message: AbstractIncomingMessage, topology: Topology) -> DeadLetter:
    headers = message.headers or {}
    death = _broker_death(message) or {}
    by_broker = f"dead-lettered by RabbitMQ ({_text(death.get('reason'))})" if death else None
    routing_key = _text(headers.get(ROUTING_KEY_HEADER)) or message.routing_key or ""
    return DeadLetter(
        message_id=message.message_id or body_message_id(message.body),
        routing_key=routing_key,
        source_queue=_text(headers.get(QUEUE_HEADER)) or _text(death.get("queue")),
        reason=_text(headers.get(REASON_HEADER)) or by_broker or _unroutable(routing_key, topology),
        attempts=max(_count(headers.get(ATTEMPT_HEADER), 1), 1),
        dead_lettered_at=_aware(headers.get(DEAD_AT_HEADER))
        or _aware(death.get("time"))
        or _aware(message.timestamp),
        returns=_count(headers.get(DELIVERY_COUNT_HEADER), 0),
        body=message.body,
    )


def _unroutable(routing_key: str, topology: Topology) -> str | None:
    """The reason of a message the main exchange's alternate exchange (the dead exchange)
    routed here: no queue is bound to its routing key (the outbound keys, which the
    bridge's queue takes too, are bound to the discard queue)."""
    bound = {key for q in topology.queues for x, key in q.bindings if x == topology.exchange}
    return None if routing_key in bound else f"unroutable routing key {routing_key}"


def _copy(message: AbstractIncomingMessage, headers: dict[str, Any], message_id: str) -> Any:
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type or "application/json",
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id,
        correlation_id=message.correlation_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )


def _replayed(message: AbstractIncomingMessage, letter: DeadLetter) -> Any:
    """The copy a replay publishes: dead-letter headers dropped, attempt reset to 1."""
    headers = {
        key: value
        for key, value in (message.headers or {}).items()
        if key not in _DEAD_LETTER_HEADERS
    }
    headers[ATTEMPT_HEADER] = 1
    headers[ROUTING_KEY_HEADER] = letter.routing_key
    return _copy(message, headers, letter.message_id)


Taken = list[tuple[AbstractIncomingMessage, DeadLetter]]


class DeadLetterQueue:
    """The dead-letter queue ``<prefix>.dead`` of one set of workers, for one operation:
    ``async with DeadLetterQueue(url, prefix) as dead: await dead.peek(50)``."""

    def __init__(self, url: str, prefix: str, *, refresh_after: int = REFRESH_AFTER) -> None:
        self._url = url
        self._topology = build_topology(prefix)
        self._refresh_after = refresh_after
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None

    @property
    def name(self) -> str:
        """The dead queue's name."""
        return self._topology.dead_queue

    async def __aenter__(self) -> DeadLetterQueue:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect once (no retries: an operator is waiting; of a cluster's URLs, the first
        node that answers) and check the queue exists."""
        self._connection = await connect_first(
            self._url, f"imageledger dead-letters {self.name}", within=10
        )
        try:
            with _translated(self._url):
                self._channel = await self._connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
                await self._exists("queue", self.name)
        except BaseException:
            await self.close()
            raise

    async def _exists(self, what: str, name: str) -> None:
        """A passive declare; a missing queue or exchange is an error naming the prefix."""
        channel = self._require()
        try:
            if what == "queue":
                await channel.declare_queue(name, passive=True)
            else:
                await channel.get_exchange(name, ensure=True)
        except aio_pika.exceptions.ChannelNotFoundEntity as exc:
            raise BrokerError(
                f"{what} {name!r} does not exist at {safe_amqp_url(self._url)} "
                "(wrong --prefix or --amqp-url, or no worker has started there yet)"
            ) from exc

    async def close(self) -> None:
        """Close the connection; dead letters still taken go back to the queue."""
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()
        self._connection = self._channel = None

    def _require(self) -> AbstractChannel:
        if self._channel is None:
            raise BrokerError("the dead-letter queue is not open (call open() first)")
        return self._channel

    async def count(self) -> int:
        """Dead letters ready in the queue right now."""
        with _translated(self._url):
            queue = await self._require().declare_queue(self.name, passive=True)
            return int(queue.declaration_result.message_count or 0)

    async def peek(self, limit: int | None = None) -> list[DeadLetter]:
        """The first ``limit`` dead letters (all without a limit); the queue keeps them."""
        with _translated(self._url):
            taken = await self._take()
            await self._give_back(taken)
        return [letter for _, letter in taken[:limit]]

    async def replay(self, select: Callable[[DeadLetter], bool]) -> ReplayReport:
        """Republish the selected dead letters to the main exchange, each acknowledged
        off the dead queue once the broker confirmed it; the others stay."""
        with _translated(self._url):
            return await self._replay(select)

    async def purge(self, select: Callable[[DeadLetter], bool]) -> list[DeadLetter]:
        """Delete the selected dead letters; the others stay. Returns those deleted."""
        with _translated(self._url):
            return await self._purge(select)

    async def _replay(self, select: Callable[[DeadLetter], bool]) -> ReplayReport:
        await self._exists("exchange", self._topology.exchange)
        exchange = await self._require().get_exchange(self._topology.exchange, ensure=False)
        taken = await self._take()
        kept: Taken = []
        replayed: list[DeadLetter] = []
        failed: list[tuple[DeadLetter, str]] = []
        for message, letter in taken:
            if not select(letter):
                kept.append((message, letter))
                continue
            unroutable = _unroutable(letter.routing_key, self._topology)
            if unroutable is not None:
                # The alternate exchange would only route it back here.
                failed.append((letter, f"not replayed: {unroutable}"))
                kept.append((message, letter))
                continue
            try:
                await exchange.publish(
                    _replayed(message, letter), letter.routing_key, mandatory=True
                )
            except aio_pika.exceptions.DeliveryError as exc:
                failed.append((letter, f"RabbitMQ refused it: {_refusal(exc)}"))
                kept.append((message, letter))
                continue
            await message.ack()
            replayed.append(letter)
        await self._give_back(kept)
        return ReplayReport(tuple(replayed), tuple(failed))

    async def _purge(self, select: Callable[[DeadLetter], bool]) -> list[DeadLetter]:
        taken = await self._take()
        kept: Taken = []
        deleted: list[DeadLetter] = []
        for message, letter in taken:
            if select(letter):
                await message.ack()
                deleted.append(letter)
            else:
                kept.append((message, letter))
        await self._give_back(kept)
        return deleted

    async def _take(self) -> Taken:
        """Take every dead letter ready now, unacknowledged, in queue order."""
        queue = await self._require().declare_queue(self.name, passive=True)
        ready = int(queue.declaration_result.message_count or 0)
        taken: Taken = []
        while len(taken) < ready:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            taken.append((message, _dead_letter(message, self._topology)))
        return taken

    async def _give_back(self, kept: Taken) -> None:
        """Return the kept dead letters in order; when one of them has been returned
        ``refresh_after`` times, copy them all to the queue in order instead (each
        acknowledged once its copy is confirmed), so the order stays and counts restart."""
        if not any(letter.returns >= self._refresh_after for _, letter in kept):
            for message, _ in kept:
                await message.nack(requeue=True)
            await self._until_ready(len(kept))
            return
        exchange = self._require().default_exchange
        for message, letter in kept:
            headers = {
                k: v for k, v in (message.headers or {}).items() if k != DELIVERY_COUNT_HEADER
            }
            copy = _copy(message, headers, letter.message_id)
            await exchange.publish(copy, self.name, mandatory=True)
            await message.ack()

    async def _until_ready(self, count: int, polls: int = 250) -> None:
        """Wait (up to ``polls`` × 20 ms) until the queue counts ``count`` ready messages
        again: a nack gets no reply, and a quorum queue applies returns asynchronously, so
        the next command could otherwise find them missing."""
        for _ in range(polls):
            if await self.count() >= count:
                return
            await asyncio.sleep(0.02)


def _refusal(exc: aio_pika.exceptions.DeliveryError) -> str:
    reply = getattr(exc.frame, "reply_text", None)
    if reply == "NO_ROUTE":
        return "no queue is bound to its routing key (NO_ROUTE)"
    return str(reply) if reply else "the broker did not confirm it"


@contextmanager
def _translated(url: str) -> Iterator[None]:
    """aio-pika's errors during an operation as ours (taken messages go back by themselves
    when the connection is lost)."""
    try:
        yield
    except CONNECTION_LOST as exc:
        raise BrokerUnavailableError(f"lost RabbitMQ at {safe_amqp_url(url)}: {exc}") from exc
    except aio_pika.exceptions.AMQPError as exc:
        raise BrokerError(f"RabbitMQ at {safe_amqp_url(url)} refused: {exc}") from exc
