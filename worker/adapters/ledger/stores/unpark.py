"""The ledger side of ``imageledger unpark``: parked pairs and the unparks, in one transaction.

The transaction is the event log's: the append lock is held, so what is read cannot change
before the unparks commit, and the fold updates ``ledger.node_images`` in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.eventlog import LedgerTransaction, NewEvent
from worker.adapters.ledger.stores.units import UnitStore
from worker.domain.prepull import Fact
from worker.domain.unpark import ParkedPair

__all__ = ["UnparkStore", "UnparkUnit"]

_PARKED = """
SELECT coalesce(ni.registry, p.data ->> 'registry', ''),
       coalesce(ni.repository, p.data ->> 'repository', ''),
       ni.node, ni.digest, ni.tag,
       coalesce((p.data ->> 'failures')::integer, ni.prepull_failures), ni.prepull_reason,
       coalesce(p.position, 0), p.occurred_at
FROM ledger.node_images ni
LEFT JOIN LATERAL (
    SELECT e.position, e.occurred_at, e.data FROM ledger.events e
    WHERE e.stream = 'prepull:' || ni.node AND e.type = 'prepull.parked'
      AND e.data ->> 'digest' = ni.digest
    ORDER BY e.position DESC LIMIT 1
) p ON true
WHERE ni.prepull_state = 'parked' AND ni.digest = ANY($1::text[])
  AND ($2::text IS NULL OR ni.node = $2)
ORDER BY ni.node, ni.digest
"""


class UnparkUnit:
    """One unpark transaction, in domain terms."""

    def __init__(self, tx: LedgerTransaction) -> None:
        self._tx = tx

    async def parked(self, digests: Sequence[str], node: str | None) -> list[ParkedPair]:
        """Parked pairs of these digests, on ``node`` or everywhere, with their park event."""
        async with translate_errors("read parked prepulls"):
            rows = await self._tx.driver.fetch(_PARKED, sorted(set(digests)), node)
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
