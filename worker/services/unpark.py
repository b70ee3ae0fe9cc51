"""Unparking: an operator lets parked (image, node) pairs be tried again.

``unpark`` reads the parked pairs of some digests (on one node or on all) and appends one
``PrepullUnparked`` per pair (``worker.domain.unpark``) in one ledger transaction, so the
read and the append see the same state. The planner then treats each pair as not tried
since (``worker.domain.prepull``: an unparked pair is requested again).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from attrs import frozen

from worker.domain.prepull import Fact
from worker.domain.unpark import ParkedPair, unpark_facts

__all__ = ["UnparkLedger", "UnparkReport", "UnparkStore", "unpark"]


class UnparkLedger(Protocol):
    """One transaction: read the parked pairs, append the unparks."""

    async def parked(self, digests: Sequence[str], node: str | None) -> list[ParkedPair]:
        """Parked pairs of these digests, on ``node`` or on every node, by node and digest."""

    async def append(self, facts: Sequence[Fact]) -> int:
        """Append facts (a known key adds nothing); returns how many were new."""


class UnparkStore(Protocol):
    """Opens one transaction."""

    def transaction(self) -> AbstractAsyncContextManager[UnparkLedger]:
        """A unit of work that commits when the block ends."""


@frozen
class UnparkReport:
    """The pairs unparked and the events appended for them."""

    pairs: tuple[ParkedPair, ...]
    appended: int


async def unpark(
    store: UnparkStore, digests: Sequence[str], node: str | None, reason: str, now: datetime
) -> UnparkReport:
    """Unpark the parked pairs of ``digests`` (on ``node``, or on every node)."""
    async with store.transaction() as unit:
        pairs = await unit.parked(digests, node)
        appended = await unit.append(unpark_facts(pairs, reason, now))
    return UnparkReport(tuple(pairs), appended)
