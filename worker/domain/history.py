"""Operator history: a tag's stretches as changes, and a node's events as appear/disappear rows.

``tag_changes`` reads the stretches of ``dashboard.tag_history`` (one per digest a tag named)
and says what happened at each boundary: discovered, resolved, moved (old -> new digest),
removed. ``node_changes`` turns a node's events into the rows an operator reads: digests
that appeared or disappeared (kubelet lists; a truncated list proves presence only,
DOMAIN.md difference 10), prepull successes, and the node's eligibility or departure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import groupby

from attrs import frozen

from worker.domain.events import (
    Event,
    NodeGone,
    NodeInventoryObserved,
    NodeSeen,
    PrepullSucceeded,
)
from worker.domain.projection import TagInterval

__all__ = [
    "NodeHistoryEntry",
    "TagChange",
    "node_changes",
    "tag_changes",
]


@frozen
class TagChange:
    """What happened to a tag at a moment: ``discovered``, ``resolved``, ``moved`` or
    ``removed``; ``digest`` is the digest afterwards (the last one for a removal)."""

    registry: str
    repository: str
    tag: str
    at: datetime
    change: str
    digest: str | None
    previous_digest: str | None = None


def _contiguous(before: TagInterval, after: TagInterval) -> bool:
    """Whether ``after`` replaced ``before`` without the tag leaving the registry between."""
    if before.valid_until is None or before.valid_until != after.valid_from:
        return False
    return before.digest != after.digest and after.digest is not None


def _one_tag(stretches: Sequence[TagInterval]) -> list[TagChange]:
    changes: list[TagChange] = []
    for index, s in enumerate(stretches):
        prev = stretches[index - 1] if index else None
        nxt = stretches[index + 1] if index + 1 < len(stretches) else None
        where = (s.registry, s.repository, s.tag)
        if prev is None or not _contiguous(prev, s):
            changes.append(TagChange(*where, s.valid_from, "discovered", s.digest))
        elif prev.digest is None:
            changes.append(TagChange(*where, s.valid_from, "resolved", s.digest))
        else:
            changes.append(TagChange(*where, s.valid_from, "moved", s.digest, prev.digest))
        if s.valid_until is not None and (nxt is None or not _contiguous(s, nxt)):
            changes.append(TagChange(*where, s.valid_until, "removed", s.digest))
    return changes


def tag_changes(stretches: Iterable[TagInterval]) -> list[TagChange]:
    """The changes a tag's stretches record, oldest first, per repository.

    A stretch that ends where the next one begins with another, known digest is a move (or
    a resolution, from an unknown digest); any other end is a removal, and a stretch after
    a removal is a new discovery.
    """

    def key(s: TagInterval) -> tuple[str, str, str]:
        return (s.registry, s.repository, s.tag)

    changes: list[TagChange] = []
    for _, group in groupby(sorted(stretches, key=lambda s: (*key(s), s.seq)), key=key):
        changes.extend(_one_tag(list(group)))
    order = {"removed": 0, "discovered": 1, "resolved": 1, "moved": 1}
    changes.sort(key=lambda c: (c.at, c.registry, c.repository, c.tag, order[c.change]))
    return changes


@frozen
class NodeHistoryEntry:
    """One thing that happened on a node: ``appeared`` / ``disappeared`` (a digest),
    ``seen`` (labels, taints or eligibility) or ``gone``; ``source`` says how it was
    learnt and ``detail`` adds what an operator needs (truncated list, pod, reason)."""

    at: datetime
    change: str
    digest: str | None = None
    source: str | None = None
    detail: str | None = None


def _inventory_changes(e: NodeInventoryObserved) -> list[NodeHistoryEntry]:
    detail = f"truncated list of {e.image_count}" if e.truncated else None
    out = [
        NodeHistoryEntry(e.occurred_at, "appeared", i.digest, "inventory", detail)
        for i in e.appeared
    ]
    if not e.truncated:
        out.extend(
            NodeHistoryEntry(e.occurred_at, "disappeared", d, "inventory") for d in e.disappeared
        )
    return out


def _seen_detail(e: NodeSeen) -> str:
    if e.eligible:
        return "eligible"
    return f"not eligible: {e.comment}" if e.comment else "not eligible"


def node_changes(events: Iterable[Event]) -> list[NodeHistoryEntry]:
    """A node's history from its events (given in log order), sorted by observation time.

    Disappearances reported by a truncated kubelet list are left out: such a list proves
    presence only (difference 10), and the ledger ignores them too.
    """
    changes: list[NodeHistoryEntry] = []
    for event in events:
        if isinstance(event, NodeInventoryObserved):
            changes.extend(_inventory_changes(event))
        elif isinstance(event, PrepullSucceeded):
            detail = f"pod {event.pod}" if event.pod else None
            changes.append(
                NodeHistoryEntry(event.occurred_at, "appeared", event.digest, "prepull", detail)
            )
        elif isinstance(event, NodeSeen):
            changes.append(
                NodeHistoryEntry(event.occurred_at, "seen", None, "node", _seen_detail(event))
            )
        elif isinstance(event, NodeGone):
            changes.append(NodeHistoryEntry(event.occurred_at, "gone", None, "node"))
    changes.sort(key=lambda c: c.at)
    return changes
