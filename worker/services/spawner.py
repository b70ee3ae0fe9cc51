"""The spawner's view of the ledger: built from the dashboard views, cached per log position."""

from __future__ import annotations

import asyncio
from typing import Protocol

from attrs import frozen

from worker.config import Config
from worker.domain.images import Repository
from worker.domain.menu import ImageCatalog
from worker.domain.spawner import LedgerSnapshot
from worker.services.evaluate import evaluate

__all__ = ["CatalogAt", "SpawnerCatalog", "SpawnerLedger"]


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
    """Builds the domain `ImageCatalog` (collection, prepull set, nodes) from the ledger.

    The view is rebuilt only when the log has grown: a request costs one ``max(position)``
    query while nothing changed. Every digest the ledger knows is used (difference 8).
    """

    def __init__(self, ledger: SpawnerLedger, config: Config) -> None:
        self._ledger = ledger
        self._config = config
        self._cached: CatalogAt | None = None
        self._lock = asyncio.Lock()

    @property
    def config(self) -> Config:
        """The configuration the views are built with."""
        return self._config

    async def current(self) -> CatalogAt:
        """The view at the log's current position (cached until the log grows)."""
        position = await self._ledger.position()
        cached = self._cached
        if cached is not None and cached.position >= position:
            return cached
        async with self._lock:
            cached = self._cached
            if cached is not None and cached.position >= position:
                return cached
            state = await self._ledger.state(self._config.images.repository)
            # Pure but CPU-bound: off the event loop, so consumers and probes keep going.
            built = CatalogAt(state, await asyncio.to_thread(self.build, state))
            if self._cached is None or built.position >= self._cached.position:
                self._cached = built
            return built

    def build(self, state: LedgerSnapshot) -> ImageCatalog:
        """The view of a state (no I/O)."""
        return evaluate(self._config, state.entries, state.nodes).view

    def with_digest(self, current: CatalogAt, tag: str, digest: str) -> ImageCatalog:
        """The view as if ``tag`` named ``digest`` (a fresh HEAD saw it move)."""
        entries = current.state.with_digest(tag, digest)
        return evaluate(self._config, entries, current.state.nodes).view
