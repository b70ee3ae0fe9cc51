"""The ledger side of ``imageledger unpark``: parked pairs and the unparks, in one transaction.

The transaction is the event log's: the append lock is held, so what is read cannot change
before the unparks commit, and the fold updates ``ledger.node_images`` in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.eventlog import LedgerTransaction, NewEvent
from worker.adapters.ledger.statements import statement
from worker.adapters.ledger.stores.units import UnitStore
from worker.domain.prepull import Fact
from worker.domain.unpark import ParkedPair

__all__ = ["UnparkStore", "UnparkUnit"]

_PARKED = statement("unpark/parked")


class UnparkUnit:
    """One unpark transaction, in domain terms."""

    def __init__(self, tx: LedgerTransaction) -> None:
        self._tx = tx

    async def parked(self, digests: Sequence[str], node: str | None) -> list[ParkedPair]:
        """Parked pairs of these digests, on ``node`` or everywhere, with their park event."""
        async with translate_errors("read parked prepulls"):
            wanted = sorted(set(digests))
            rows = await _PARKED.fetch(self._tx.driver, digests=wanted, node=node)
        return [ParkedPair(*r) for r in rows]

    async def append(self, facts: Sequence[Fact]) -> int:
        """Append the facts; returns how many were new."""
        if not facts:
            return 0
        result = await self._tx.append([NewEvent(f.event, f.key, f.causation) for f in facts])
        return result.appended


class UnparkStore(UnitStore[UnparkUnit]):
    """Opens unpark transactions on the event log."""

    def _unit(self, tx: LedgerTransaction) -> UnparkUnit:
        return UnparkUnit(tx)
