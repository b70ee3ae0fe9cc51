"""Which images a node holds: folding observations, newest first, truncation-aware."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from attrs import frozen

from worker.domain.nodes import DEFAULT_NODE_STATUS_MAX_IMAGES

__all__ = ["InventoryChange", "Presence", "apply_presence", "decide_inventory", "is_truncated"]


@frozen
class Presence:
    """The latest fact about one digest on one node."""

    present: bool
    observed_at: datetime
    source: str = "inventory"


def is_truncated(entries: int, max_images: int = DEFAULT_NODE_STATUS_MAX_IMAGES) -> bool:
    """A kubelet list of ``max_images`` entries or more may have been cut (difference 10)."""
    return entries >= max_images


def apply_presence(
    known: Mapping[str, Presence], digest: str, fact: Presence
) -> dict[str, Presence]:
    """Record a fact unless a newer one is already known (difference 11).

    Ties go to the later arrival, so replaying the same facts in order gives the same state.
    """
    current = known.get(digest)
    if current is not None and current.observed_at > fact.observed_at:
        return dict(known)
    return {**known, digest: fact}


@frozen
class InventoryChange:
    """What one inventory observation changes: digests appeared and disappeared."""

    appeared: frozenset[str]
    disappeared: frozenset[str]
    truncated: bool

    @property
    def empty(self) -> bool:
        """Whether the observation changes nothing."""
        return not self.appeared and not self.disappeared


def decide_inventory(
    known: Mapping[str, Presence],
    reported: Iterable[str],
    entries: int,
    observed_at: datetime,
    max_images: int = DEFAULT_NODE_STATUS_MAX_IMAGES,
    complete_at: datetime | None = None,
) -> InventoryChange:
    """Compare a kubelet image list with what is known of the node.

    A digest appears when it is reported and was not known present; it disappears only
    when the list is complete (not truncated, difference 10) and it was known present.
    Facts observed later than this list are never overturned (difference 11), and a list
    observed before the node's newest recorded complete list (``complete_at``) changes
    nothing: that complete list already said what the node held, digest by digest.
    """
    seen = frozenset(reported)
    truncated = is_truncated(entries, max_images)
    if complete_at is not None and observed_at < complete_at:
        return InventoryChange(frozenset(), frozenset(), truncated)
    appeared = frozenset(d for d in seen if _overturns(known.get(d), observed_at, present=True))
    disappeared: frozenset[str] = frozenset()
    if not truncated:
        disappeared = frozenset(
            d
            for d, fact in known.items()
            if d not in seen and _overturns(fact, observed_at, present=False)
        )
    return InventoryChange(appeared, disappeared, truncated)


def _overturns(fact: Presence | None, observed_at: datetime, *, present: bool) -> bool:
    """Whether a new fact (``present`` at ``observed_at``) changes what is known."""
    if fact is None:
        return present
    return fact.present != present and fact.observed_at <= observed_at
