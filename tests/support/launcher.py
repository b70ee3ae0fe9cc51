"""A stand-in for the pod launcher: answers ``prepull.requested`` with ``prepull.pod_completed``,
and collects ``prepull.complete`` announcements, over a real RabbitMQ."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection

from worker.converter import decode_outbound_message, encode_message
from worker.domain.messages import PodCompleted, PrepullCompleteMessage, PrepullRequestedMessage

__all__ = ["Launcher", "launcher"]


class Launcher:
    """Succeeds every prepull, except the first attempt of each pair in ``fail_once`` and
    every attempt of each pair in ``fail_always``."""

    def __init__(
        self,
        exchange: AbstractExchange,
        fail_once: set[tuple[str, str]],
        fail_always: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self._exchange = exchange
        self._fail_once = set(fail_once)
        self._fail_always = fail_always
        self.requests: list[tuple[str, PrepullRequestedMessage]] = []
        self.complete: list[tuple[str, PrepullCompleteMessage]] = []
        self.answers: list[tuple[str, bytes]] = []

    async def on_request(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            request = decode_outbound_message("prepull.requested", message.body)
            assert isinstance(request, PrepullRequestedMessage)
            assert message.message_id is not None
            self.requests.append((message.message_id, request))
            pair = (request.node, request.digest)
            failing = pair in self._fail_once or pair in self._fail_always
            self._fail_once.discard(pair)
            answer = PodCompleted(
                node=request.node,
                image=request.image,
                pod=f"prepull-{len(self.requests)}",
                succeeded=not failing,
                finished_at=datetime.now(tz=UTC),
                reason="ErrImagePull: simulated" if failing else None,
            )
            body = encode_message(answer)
            answer_id = f"pod:{message.message_id}"
            self.answers.append((answer_id, body))
            await self.publish(answer_id, body)

    async def publish(self, message_id: str, body: bytes) -> None:
        await self._exchange.publish(
            aio_pika.Message(
                body,
                message_id=message_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            "prepull.pod_completed",
        )

    async def on_complete(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            done = decode_outbound_message("prepull.complete", message.body)
            assert isinstance(done, PrepullCompleteMessage)
            assert message.message_id is not None
            self.complete.append((message.message_id, done))


@asynccontextmanager
async def launcher(
    connection: AbstractRobustConnection,
    exchange_name: str,
    fail_once: set[tuple[str, str]],
    fail_always: frozenset[tuple[str, str]] = frozenset(),
) -> AsyncIterator[Launcher]:
    """Bind the launcher's own queues to the worker's exchange (declared already)."""
    channel = await connection.channel()
    try:
        exchange = await channel.get_exchange(exchange_name)
        stand_in = Launcher(exchange, fail_once, fail_always)
        requests = await channel.declare_queue(exclusive=True)
        await requests.bind(exchange, "prepull.requested")
        complete = await channel.declare_queue(exclusive=True)
        await complete.bind(exchange, "prepull.complete")
        await requests.consume(stand_in.on_request)
        await complete.consume(stand_in.on_complete)
        yield stand_in
    finally:
        await channel.close()
