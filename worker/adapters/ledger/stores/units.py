"""The opener shared by the stores whose writes are units of work on the event log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from worker.adapters.ledger.eventlog import EventLog, LedgerTransaction

__all__ = ["UnitStore"]

U = TypeVar("U")


class UnitStore(Generic[U]):
    """Opens units of work (``U``, made by ``_unit`` from a log transaction) on the event log."""

    def __init__(self, log: EventLog) -> None:
        self._log = log

    def _unit(self, tx: LedgerTransaction) -> U:
        """The unit of work over ``tx``."""
        raise NotImplementedError

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[U]:
        """A unit of work; commits when the block ends, rolls back on an error."""
        async with self._log.transaction() as tx:
            yield self._unit(tx)
