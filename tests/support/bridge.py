"""For the Kubernetes bridge's tests: an in-memory message sink and running services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

from attrs import define, field

from worker.converter import decode_message, encode_message
from worker.domain.errors import ImageLedgerError, MessageRejected
from worker.domain.messages import InboundMessage

__all__ = ["MemoryBroker", "Published", "running", "until"]

M = TypeVar("M", bound=InboundMessage)


@define
class Published:
    """A message as a consumer would receive it: routing key, id, decoded body."""

    routing_key: str
    message_id: str
    message: InboundMessage


@define
class MemoryBroker:
    """Takes the place of the broker's ``publish_message``: each message goes through
    the real encoder and decoder and is kept in order; one the worker's decoder refuses is
    kept in ``refused`` with the reason, as the worker would dead-letter it (publishing
    itself succeeds); ``available = False`` makes publishing fail as a broker outage does."""

    published: list[Published] = field(factory=list)
    refused: list[tuple[Published, str]] = field(factory=list)
    available: bool = True
    _arrived: asyncio.Event = field(factory=asyncio.Event)

    async def publish_message(self, message: InboundMessage, *, message_id: str) -> None:
        """Publish (keep) ``message``; raises ImageLedgerError while unavailable."""
        if not self.available:
            raise ImageLedgerError(f"cannot publish {message.ROUTING_KEY}: broker away")
        try:
            decoded = decode_message(message.ROUTING_KEY, encode_message(message))
        except MessageRejected as exc:
            self.refused.append((Published(message.ROUTING_KEY, message_id, message), exc.reason))
            return
        self.published.append(Published(message.ROUTING_KEY, message_id, decoded))
        self._arrived.set()

    def of(self, kind: type[M], where: Callable[[M], bool] = lambda _: True) -> list[M]:
        """Published messages of ``kind`` that ``where`` accepts, in order."""
        return [
            p.message for p in self.published if isinstance(p.message, kind) and where(p.message)
        ]

    def ids(self, kind: type[InboundMessage]) -> list[str]:
        """Message ids of the published messages of ``kind``, in order."""
        return [p.message_id for p in self.published if isinstance(p.message, kind)]

    async def wait_for(
        self,
        kind: type[M],
        where: Callable[[M], bool] = lambda _: True,
        *,
        count: int = 1,
        within: float = 5.0,
    ) -> list[M]:
        """Wait up to ``within`` seconds until ``count`` messages of ``kind`` matching
        ``where`` were published."""
        async with asyncio.timeout(within):
            while len(found := self.of(kind, where)) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return found


@asynccontextmanager
async def running(*jobs: Coroutine[Any, Any, Any]) -> AsyncIterator[list[asyncio.Task[Any]]]:
    """Run the coroutines as tasks for the block; cancel them afterwards. A task that
    failed makes the block fail, with its exception."""
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        yield tasks
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task


async def until(condition: Callable[[], bool], within: float = 3.0) -> None:
    """Wait up to ``within`` seconds until ``condition()`` holds (checked every 20 ms)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (the state polled has no event to wait on)
            await asyncio.sleep(0.02)
