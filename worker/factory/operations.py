"""The operator commands' side of the factory: each use case on the adapters it needs.

An `Operations` holds where the database and RabbitMQ are; each method opens what its
use case needs (an engine, the dead-letter queue, a broker connection), runs it and closes
it again, as a command that runs once wants. A database failure names the database
(without its password), so that the operator sees which one.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from attrs import frozen
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.broker import (
    Broker,
    BrokerError,
    BrokerSettings,
    BrokerUnavailableError,
    DeadLetterQueue,
    amqp_url,
    safe_amqp_url,
)
from worker.adapters.ledger import (
    DatabaseMissingError,
    EventLog,
    ExplainStore,
    HistoryStore,
    PruneReport,
    RebuildReport,
    UnparkStore,
    current_revision,
    dashboard,
    database_url,
    prune,
    rebuild_projections,
    safe_url,
    upgrade,
)
from worker.domain.dead_letters import DeadLetter, ReplayReport, Selection
from worker.domain.explain import Explanation, ImageQuery
from worker.domain.messages import RefreshRequested
from worker.domain.prepull import PrepullSettings
from worker.factory.application import database, utcnow
from worker.factory.checks import createdb_command
from worker.services.explain import explain_image
from worker.services.history import (
    NodeHistory,
    TagAt,
    TagHistory,
    node_history,
    tag_at,
    tag_history,
)
from worker.services.unpark import UnparkReport, unpark_image

__all__ = ["DEFAULT_PREFIX", "Operations", "RefreshRequest"]

DEFAULT_PREFIX = "imageledger"
"""The exchange and queue name prefix of the workers, unless told otherwise."""

T = TypeVar("T")
Row = dict[str, Any]
Progress = Callable[[int, int], None]


@frozen
class RefreshRequest:
    """A published ``refresh.request``: its message id, the exchange it went to, the queue
    bound to it and that queue's consumers right after (0: no worker will take it)."""

    message_id: str
    exchange: str
    queue: str
    consumers: int


class Operations:
    """The operator's use cases against one database and one set of workers' RabbitMQ."""

    def __init__(
        self,
        database_url: str | None = None,
        amqp_url: str | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self._database_url = database_url
        self._amqp_url = amqp_url
        self._prefix = prefix

    @property
    def database(self) -> str:
        """The database URL without its password."""
        return safe_url(database_url(self._database_url))

    async def _on_database(self, action: Callable[[AsyncEngine], Awaitable[T]]) -> T:
        async with database(self._database_url) as engine:
            return await action(engine)

    async def migrate(self, revision: str) -> str | None:
        """Upgrade the schema to ``revision``; the revision the database is at then."""

        async def migrate(engine: AsyncEngine) -> str | None:
            await upgrade(engine, revision)
            return await current_revision(engine)

        try:
            return await self._on_database(migrate)
        except DatabaseMissingError as exc:
            command = createdb_command(database_url(self._database_url))
            raise DatabaseMissingError(f"{exc}; create it first: {command}") from exc

    async def rebuild(self, chunk: int | None, progress: Progress) -> RebuildReport:
        """Empty the projections and fold the whole log again."""
        return await self._on_database(
            lambda e: rebuild_projections(e, chunk=chunk, progress=progress)
        )

    async def prune(self, cutoff: datetime, *, dry_run: bool) -> PruneReport:
        """Delete published outbox rows older than ``cutoff`` (or count them)."""
        return await self._on_database(lambda e: prune(e, cutoff, dry_run=dry_run))

    async def menu(self) -> list[Row]:
        """``dashboard.menu``: radio entries then dropdown entries."""
        return await self._on_database(dashboard.menu_rows)

    async def prepull_status(self) -> list[Row]:
        """Per target image: the eligible nodes that have it and that lack it."""
        return await self._on_database(dashboard.prepull_status_rows)

    async def node_status(self) -> list[Row]:
        """Per current node: eligibility and the target images it lacks."""
        return await self._on_database(dashboard.node_status_rows)

    async def tag_history(self, query: ImageQuery) -> TagHistory:
        """What happened to a tag (``services.history.tag_history``)."""
        return await self._on_database(lambda e: tag_history(HistoryStore(e), query))

    async def tag_at(self, query: ImageQuery, at: datetime) -> TagAt:
        """The digest a tag named at ``at`` (``services.history.tag_at``)."""
        return await self._on_database(lambda e: tag_at(HistoryStore(e), query, at))

    async def node_history(self, node: str, at: datetime, limit: int) -> NodeHistory:
        """The images a node held at ``at`` (``services.history.node_history``)."""
        return await self._on_database(lambda e: node_history(HistoryStore(e), node, at, limit))

    async def explain(self, query: ImageQuery, node: str, settings: PrepullSettings) -> Explanation:
        """Why the image is or is not prepulled on the node now."""
        return await self._on_database(
            lambda e: explain_image(ExplainStore(e), query, node, utcnow(), settings)
        )

    async def unpark(self, query: ImageQuery, node: str | None, reason: str) -> UnparkReport:
        """Unpark the image's parked pairs (on ``node`` or everywhere) now."""

        async def unpark(engine: AsyncEngine) -> UnparkReport:
            store = UnparkStore(EventLog(engine))
            return await unpark_image(ExplainStore(engine), store, query, node, reason, utcnow())

        return await self._on_database(unpark)

    async def request_refresh(self) -> RefreshRequest:
        """Publish a ``refresh.request`` for the workers: where it went and how many
        consumers its queue had then (none: no worker runs on this prefix).

        Raises BrokerUnavailableError when RabbitMQ cannot be reached (one attempt: an
        operator is waiting), BrokerError when it refuses.
        """
        url = amqp_url(self._amqp_url)
        broker = Broker(BrokerSettings(url=url, prefix=self._prefix, connect_attempts=1))
        message_id = f"refresh-{uuid.uuid4()}"
        queue = broker.topology.queue_for(RefreshRequested.ROUTING_KEY).name
        try:
            try:
                await broker.connect()
            except BrokerUnavailableError as exc:
                raise BrokerUnavailableError(
                    f"cannot reach RabbitMQ at {safe_amqp_url(url)}: "
                    f"{exc.__cause__ or exc}; the refresh was not requested"
                ) from exc
            request = RefreshRequested(reason="imageledger refresh", requested_at=utcnow())
            await broker.publish_message(request, message_id=message_id)
            state = await broker.queue_state(queue)
        except BrokerUnavailableError:
            raise
        except BrokerError as exc:
            raise BrokerError(f"cannot publish the refresh request: {exc}") from exc
        finally:
            await broker.close()
        return RefreshRequest(message_id, broker.topology.exchange, queue, state.consumers)

    @property
    def dead_queue(self) -> str:
        """The name of the workers' dead-letter queue."""
        return self._dead_letters().name

    def _dead_letters(self) -> DeadLetterQueue:
        return DeadLetterQueue(amqp_url(self._amqp_url), self._prefix)

    async def dead_letters(self, limit: int) -> tuple[int, list[DeadLetter]]:
        """How many dead letters there are, and the first ``limit`` (the queue keeps them)."""
        async with self._dead_letters() as queue:
            return await queue.count(), await queue.peek(limit)

    async def count_dead_letters(self, selection: Selection) -> int:
        """How many dead letters the selection names."""
        async with self._dead_letters() as queue:
            return sum(1 for letter in await queue.peek() if selection(letter))

    async def replay_dead_letters(self, selection: Selection) -> ReplayReport:
        """Publish the selected dead letters again under their original routing key."""
        async with self._dead_letters() as queue:
            return await queue.replay(selection)

    async def purge_dead_letters(self, selection: Selection) -> list[DeadLetter]:
        """Delete the selected dead letters for good; those deleted."""
        async with self._dead_letters() as queue:
            return await queue.purge(selection)
