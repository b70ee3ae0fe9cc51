"""Unparking: an operator lets parked (image, node) pairs be tried again.

``unpark_image`` finds the digest the operator's name stands for and checks the node;
``unpark`` reads the parked pairs of those digests (on one node or on all) and appends one
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

from worker.domain.errors import UnknownImageError, UnknownNodeError
from worker.domain.explain import ImageQuery
from worker.domain.prepull import Fact
from worker.domain.projection import NodeRow
from worker.domain.unpark import ParkedPair, unpark_facts
from worker.services.lookup import ImageFinder, find_image

__all__ = ["ParkedImages", "UnparkLedger", "UnparkReport", "UnparkStore", "unpark", "unpark_image"]


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


class ParkedImages(ImageFinder, Protocol):
    """What finding the pairs to unpark reads of the ledger."""

    async def node(self, name: str) -> NodeRow | None:
        """The node's projection row, or None for a node never seen."""

    async def digest_known(self, digest: str) -> bool:
        """Whether any node has a presence or prepull record of the digest."""


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


async def unpark_image(
    finder: ParkedImages,
    store: UnparkStore,
    query: ImageQuery,
    node: str | None,
    reason: str,
    now: datetime,
) -> UnparkReport:
    """Unpark the parked pairs of the image the name stands for (a tag stands for the digest
    it names now; a digest for itself, if the ledger knows it), on ``node`` or everywhere.

    Raises UnknownNodeError for a node never seen, UnknownImageError (or
    AmbiguousImageError) for a name that stands for no image (or for several).
    """
    if node is not None and await finder.node(node) is None:
        raise UnknownNodeError(f"unknown node {node}: it never reported an inventory")
    return await unpark(store, await _digests(finder, query), node, reason, now)


async def _digests(finder: ParkedImages, query: ImageQuery) -> list[str]:
    """The digest the image names now (a digest names itself, if the ledger knows it)."""
    if query.tag is None and query.digest is not None:
        if await finder.find_tags(query) or await finder.digest_known(query.digest):
            return [query.digest]
        raise UnknownImageError(f"unknown image {query}: no tag or node knows that digest")
    image = await find_image(finder, query)
    return [image.digest] if image.digest is not None else []
