"""The status page's side of the factory: its use cases on a worker's engine and broker."""

from __future__ import annotations

from worker.adapters.broker import BrokerError
from worker.adapters.ledger import ConsoleStore, ExplainStore, HistoryStore
from worker.domain.explain import parse_image_query
from worker.factory.application import Runtime, utcnow
from worker.services.console import (
    DeadLetters,
    ImagePage,
    NodePage,
    Overview,
    image_page,
    node_page,
    overview,
)
from worker.services.prepull import prepull_settings

__all__ = ["Console"]


class Console:
    """What the status page asks of one worker: the overview, an image, a node."""

    def __init__(self, runtime: Runtime) -> None:
        engine = runtime.app.engine
        self._broker = runtime.broker
        self._ledger = ConsoleStore(engine)
        self._history = HistoryStore(engine)
        self._explain = ExplainStore(engine)
        self._settings = prepull_settings(runtime.app.config)

    @property
    def prefix(self) -> str:
        """The workers' exchange name and queue prefix."""
        return self._broker.topology.exchange

    async def dead_letters(self) -> DeadLetters:
        """The dead-letter queue's depth now (unknown when the broker does not answer)."""
        queue = self._broker.topology.dead_queue
        try:
            state = await self._broker.queue_state(queue)
        except BrokerError:
            return DeadLetters(queue, None)
        return DeadLetters(queue, state.messages if state.exists else 0)

    async def overview(self) -> Overview:
        """The status page now. Raises LedgerError when the database does not answer."""
        return await overview(self._ledger, utcnow(), await self.dead_letters())

    async def image(self, name: str) -> ImagePage:
        """``history`` and ``explain`` of the image ``name`` (a tag, reference or digest).

        Raises InvalidReferenceError for a malformed name, UnknownImageError or
        AmbiguousImageError as ``explain`` does.
        """
        query = parse_image_query(name)
        stores = (self._ledger, self._history, self._explain)
        return await image_page(*stores, query, utcnow(), self._settings)

    async def node(self, node: str) -> NodePage:
        """``history --node`` and ``explain`` of each target on ``node`` (UnknownNodeError
        for a node never seen)."""
        stores = (self._ledger, self._history, self._explain)
        return await node_page(*stores, node, utcnow(), self._settings)
