"""The spawner's views of the ledger, each cached per log position.

``SpawnerDocuments`` serves the ``images`` and ``prepulls`` documents from what the
projections store (a refresh's catalog rows, the fold's nodes). ``SpawnerCatalog``
evaluates the domain's catalog from the current tags and nodes, for resolving: a resolve
looks tags and references up among the parsed images, and when a fresh HEAD finds a digest
the ledger never stored, the catalog as if the tag named it (aliases follow the digest) is
a state no projection holds, so it is evaluated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from attrs import frozen

from worker.config import Config
from worker.domain.images import Repository
from worker.domain.menu import ImageCatalog
from worker.domain.served import ServedCatalog
from worker.domain.spawner import LedgerSnapshot
from worker.services.evaluate import evaluate

__all__ = [
    "CatalogAt",
    "PositionCache",
    "ServedLedger",
    "SpawnerCatalog",
    "SpawnerDocuments",
    "SpawnerLedger",
]

T = TypeVar("T")


class PositionCache(Generic[T]):
    """A value read from the ledger at a log position, read again only when the log has
    grown: while nothing changed, a request costs one ``max(position)`` query. Reads that
    race are made once (a lock); an older read never replaces a newer value."""

    def __init__(
        self,
        head: Callable[[], Awaitable[int]],
        read: Callable[[], Awaitable[T]],
        position: Callable[[T], int],
    ) -> None:
        self._head = head
        self._read = read
        self._position = position
        self._cached: T | None = None
        self._lock = asyncio.Lock()

    def _fresh(self, position: int) -> T | None:
        cached = self._cached
        return cached if cached is not None and self._position(cached) >= position else None

    async def current(self) -> T:
        """The value at the log's current position."""
        position = await self._head()
        if (cached := self._fresh(position)) is not None:
            return cached
        async with self._lock:
            if (cached := self._fresh(position)) is not None:
                return cached
            value = await self._read()
            if self._cached is None or self._position(value) >= self._position(self._cached):
                self._cached = value
            return value


class ServedLedger(Protocol):
    """What the spawner API reads of the projections."""

    async def position(self) -> int:
        """The position of the log's last event (0 for an empty log)."""

    async def served(self, repository: Repository) -> ServedCatalog:
        """The repository's stored catalog rows and the current nodes, at one position."""


class SpawnerDocuments:
    """The stored catalog of the configured repository, as the spawner API serves it.

    Cached per log position (``PositionCache``): a read is five queries, one of them every
    digest every current node holds, so a request while nothing was appended costs one
    ``max(position)`` query instead.
    """

    def __init__(self, ledger: ServedLedger, config: Config) -> None:
        repository = config.images.repository
        self._cache = PositionCache(
            ledger.position, lambda: ledger.served(repository), lambda c: c.position
        )

    async def current(self) -> ServedCatalog:
        """The stored catalog at the log's current position (cached until the log grows)."""
        return await self._cache.current()


class SpawnerLedger(Protocol):
    """What the spawner reads of the ledger (the ``dashboard`` views)."""

    async def position(self) -> int:
        """The position of the log's last event (0 for an empty log)."""

    async def state(self, repository: Repository) -> LedgerSnapshot:
        """Current tags of ``repository`` and current nodes, read at one position."""


@frozen
class CatalogAt:
    """The domain view of the ledger at one position, and the state it was built from."""

    state: LedgerSnapshot
    view: ImageCatalog

    @property
    def position(self) -> int:
        """The log position this view reflects."""
        return self.state.position


class SpawnerCatalog:
    """Builds the domain `ImageCatalog` (collection, prepull set, nodes) from the ledger,
    for resolving (see the module's docstring for why it is evaluated).

    The view is rebuilt only when the log has grown (``PositionCache``). Every digest the
    ledger knows is used (difference 8).
    """

    def __init__(self, ledger: SpawnerLedger, config: Config) -> None:
        self._ledger = ledger
        self._config = config
        self._cache = PositionCache(ledger.position, self._read, lambda c: c.position)

    @property
    def config(self) -> Config:
        """The configuration the views are built with."""
        return self._config

    async def current(self) -> CatalogAt:
        """The view at the log's current position (cached until the log grows)."""
        return await self._cache.current()

    async def _read(self) -> CatalogAt:
        state = await self._ledger.state(self._config.images.repository)
        # Pure but CPU-bound: off the event loop, so consumers and probes keep going.
        return CatalogAt(state, await asyncio.to_thread(self.build, state))

    def build(self, state: LedgerSnapshot) -> ImageCatalog:
        """The view of a state (no I/O)."""
        return evaluate(self._config, state.entries, state.nodes).view

    def with_digest(self, current: CatalogAt, tag: str, digest: str) -> ImageCatalog:
        """The view as if ``tag`` named ``digest`` (a fresh HEAD saw it move)."""
        entries = current.state.with_digest(tag, digest)
        return evaluate(self._config, entries, current.state.nodes).view
