"""Deciding what node messages add to the log: NodeSeen and inventory changes, NodeGone.

Nodes outside the node selector are recorded, ineligible, with the reason, so that the
status views can show why they get no prepulls (DOMAIN.md difference 5). An observation
older than what is known of the node changes nothing of its labels (difference 11); its
image list is still compared digest by digest, and a truncated list never proves absence
(difference 10). A change of labels or taints unparks the node's parked prepulls
(difference 4): whatever made them fail may be gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from attrs import evolve, field, frozen

from worker.domain.events import (
    CachedImage,
    NodeGone,
    NodeInventoryObserved,
    NodeSeen,
    PrepullUnparked,
)
from worker.domain.inventory import Presence, apply_presence, decide_inventory
from worker.domain.messages import NodeGoneMessage, NodeInventory
from worker.domain.nodes import (
    DEFAULT_NODE_STATUS_MAX_IMAGES,
    Eligibility,
    Taint,
    Toleration,
    cached_digests,
    eligibility,
    matches_selector,
)
from worker.domain.prepull import Fact, PairState

__all__ = [
    "KnownNode",
    "NodeChange",
    "NodeDecision",
    "NodeRules",
    "decide_gone",
    "decide_node",
    "node_eligibility",
    "unpark_on_change",
]

OUTSIDE_SELECTOR = "Node does not match the node selector"


@frozen
class NodeRules:
    """What decides eligibility, and the kubelet's list cap."""

    node_selector: Mapping[str, str] = field(factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    max_images: int = DEFAULT_NODE_STATUS_MAX_IMAGES


@frozen
class KnownNode:
    """What the projections know of a node: its last seen labels and what it holds."""

    name: str
    labels: Mapping[str, str] = field(factory=dict)
    taints: tuple[Taint, ...] = ()
    eligible: bool = False
    comment: str | None = None
    seen_at: datetime | None = None
    gone: bool = False
    presence: Mapping[str, Presence] = field(factory=dict)
    complete_at: datetime | None = None
    """When the newest recorded complete (not truncated) kubelet list was observed."""


@frozen
class NodeChange:
    """A known node whose labels or taints changed, by which message, when, and how."""

    node: str
    message_id: str
    at: datetime
    reason: str


@frozen
class NodeDecision:
    """The facts one message adds, the node as known afterwards, and whether its labels
    or taints changed (``change``, which may unpark its parked prepulls)."""

    facts: tuple[Fact, ...]
    node: KnownNode
    change: NodeChange | None = None


def _change(before: KnownNode | None, seen: NodeSeen | None, message_id: str) -> NodeChange | None:
    """Labels or taints of a node seen before differ in this observation."""
    if seen is None or before is None or before.seen_at is None:
        return None
    what = [
        name
        for name, changed in (
            ("labels", dict(before.labels) != dict(seen.labels)),
            ("taints", before.taints != seen.taints),
        )
        if changed
    ]
    if not what:
        return None
    return NodeChange(seen.node, message_id, seen.occurred_at, f"node {' and '.join(what)} changed")


def node_eligibility(
    labels: Mapping[str, str], taints: Sequence[Taint], rules: NodeRules
) -> Eligibility:
    """Outside the selector: ineligible with that reason; else the taint rule (3.4)."""
    if not matches_selector(labels, rules.node_selector):
        return Eligibility(False, OUTSIDE_SELECTOR)
    return eligibility(taints, rules.tolerations)


def _seen(
    known: KnownNode, message: NodeInventory, rules: NodeRules
) -> tuple[NodeSeen | None, KnownNode]:
    if known.seen_at is not None and message.observed_at < known.seen_at:
        return None, known
    status = node_eligibility(message.labels, message.taints, rules)
    labels = dict(message.labels)
    same = (
        known.seen_at is not None
        and not known.gone
        and dict(known.labels) == labels
        and known.taints == message.taints
        and known.eligible == status.eligible
        and known.comment == status.comment
    )
    updated = evolve(
        known,
        labels=labels,
        taints=message.taints,
        eligible=status.eligible,
        comment=status.comment,
        seen_at=message.observed_at,
        gone=False,
    )
    if same:
        return None, updated
    event = NodeSeen(
        node=message.node,
        labels=labels,
        taints=message.taints,
        eligible=status.eligible,
        comment=status.comment,
        occurred_at=message.observed_at,
    )
    return event, updated


def _inventory(
    known: KnownNode, message: NodeInventory, rules: NodeRules
) -> tuple[NodeInventoryObserved | None, KnownNode]:
    sizes = cached_digests(message.images)
    entries = len(message.images)
    at = message.observed_at
    change = decide_inventory(
        known.presence, sizes, entries, at, rules.max_images, known.complete_at
    )
    # A node's first complete list is a report even when it changes nothing (an empty
    # kubelet list): recorded, it shows as the node's inventory, not as a missing one.
    if change.empty and (known.complete_at is not None or change.truncated):
        return None, known
    presence = dict(known.presence)
    for digest in sorted(change.appeared):
        presence = apply_presence(presence, digest, Presence(True, at))
    for digest in sorted(change.disappeared):
        presence = apply_presence(presence, digest, Presence(False, at))
    event = NodeInventoryObserved(
        node=message.node,
        appeared=tuple(CachedImage(d, sizes.get(d)) for d in sorted(change.appeared)),
        disappeared=tuple(sorted(change.disappeared)),
        truncated=change.truncated,
        image_count=entries,
        occurred_at=at,
    )
    complete_at = known.complete_at
    if not change.truncated and (complete_at is None or at > complete_at):
        complete_at = at
    return event, evolve(known, presence=presence, complete_at=complete_at)


def decide_node(
    known: KnownNode | None, message: NodeInventory, message_id: str, rules: NodeRules
) -> NodeDecision:
    """The facts a ``node.inventory`` message adds: ``NodeSeen`` when labels, taints or
    eligibility changed, ``NodeInventoryObserved`` with the changes only. Keys derive from
    the message id, so a redelivery adds nothing."""
    node = known or KnownNode(message.node)
    seen, node = _seen(node, message, rules)
    observed, node = _inventory(node, message, rules)
    facts = []
    if seen is not None:
        facts.append(Fact(seen, f"{message_id}:{NodeSeen.TYPE}", message_id))
    if observed is not None:
        facts.append(Fact(observed, f"{message_id}:{NodeInventoryObserved.TYPE}", message_id))
    return NodeDecision(tuple(facts), node, _change(known, seen, message_id))


def decide_gone(known: KnownNode | None, message: NodeGoneMessage, message_id: str) -> NodeDecision:
    """``NodeGone`` for a node deleted from the cluster, so that it leaves the status and
    gets no prepulls. An unknown node, one already gone, or a deletion observed before the
    node's newest observation (it came back since) adds nothing. A later inventory brings
    the node back."""
    node = known or KnownNode(message.node)
    if known is None or known.gone:
        return NodeDecision((), node)
    if known.seen_at is not None and message.observed_at < known.seen_at:
        return NodeDecision((), node)
    event = NodeGone(node=message.node, occurred_at=message.observed_at)
    fact = Fact(event, f"{message_id}:{NodeGone.TYPE}", message_id)
    return NodeDecision((fact,), evolve(node, gone=True, seen_at=message.observed_at))


def unpark_on_change(changes: Sequence[NodeChange], parked: Sequence[PairState]) -> list[Fact]:
    """``PrepullUnparked`` for each parked pair of a node whose labels or taints changed
    (the first change of the node wins; keyed by its message, so a redelivery adds
    nothing). Pairs that are not parked are left alone."""
    first: dict[str, NodeChange] = {}
    for item in changes:
        first.setdefault(item.node, item)
    facts: list[Fact] = []
    for pair in sorted(parked, key=lambda p: (p.node, p.digest)):
        change = first.get(pair.node)
        if change is None or pair.state != "parked" or pair.present:
            continue
        event = PrepullUnparked(
            registry=pair.registry or "",
            repository=pair.repository or "",
            digest=pair.digest,
            node=pair.node,
            reason=change.reason,
            occurred_at=change.at,
        )
        key = f"{change.message_id}:{PrepullUnparked.TYPE}:{pair.digest}"
        facts.append(Fact(event, key, change.message_id))
    return facts
