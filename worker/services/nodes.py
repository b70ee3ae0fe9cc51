"""Recording node inventories and deletions: NodeSeen on change, image-list changes, NodeGone
and unparks, per batch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import structlog

from worker.domain.messages import Delivery, NodeGoneMessage, NodeInventory
from worker.domain.node_observation import (
    KnownNode,
    NodeChange,
    NodeRules,
    decide_gone,
    decide_node,
    unpark_on_change,
)
from worker.domain.prepull import Fact, PairState

__all__ = ["NodeLedger", "record_inventories"]

log = structlog.get_logger("imageledger.nodes")


class NodeLedger(Protocol):
    """What recording inventories needs of the unit of work."""

    async def known_nodes(self, names: Iterable[str]) -> dict[str, KnownNode]:
        """What is known of these nodes (absent: never seen)."""

    async def append(self, facts: Sequence[Fact]) -> dict[str, int]:
        """Append facts; a known key adds nothing. Returns new events by type."""

    async def parked_pairs(self, nodes: Iterable[str]) -> list[PairState]:
        """The parked (node, digest) pairs of these nodes."""


async def record_inventories(
    unit: NodeLedger, deliveries: Sequence[Delivery], rules: NodeRules
) -> dict[str, int]:
    """Decide every ``node.inventory`` and ``node.gone`` of the batch in arrival order
    against the nodes as known (including the batch's earlier messages), then append the
    facts at once, with an unpark for each parked pair of a node whose labels or taints
    changed."""
    messages = [
        (d.message, d.message_id)
        for d in deliveries
        if isinstance(d.message, NodeInventory | NodeGoneMessage)
    ]
    if not messages:
        return {}
    known = await unit.known_nodes(m.node for m, _ in messages)
    facts: list[Fact] = []
    changes: list[NodeChange] = []
    for message, message_id in messages:
        if isinstance(message, NodeGoneMessage):
            decision = decide_gone(known.get(message.node), message, message_id)
        else:
            decision = decide_node(known.get(message.node), message, message_id, rules)
        known[message.node] = decision.node
        facts.extend(decision.facts)
        if decision.change is not None:
            changes.append(decision.change)
        if decision.facts:
            log.debug(
                "node inventory recorded",
                node=message.node,
                message_id=message_id,
                facts=[f.event.TYPE for f in decision.facts],
            )
    if changes:
        parked = await unit.parked_pairs(c.node for c in changes)
        unparks = unpark_on_change(changes, parked)
        facts.extend(unparks)
        if unparks:
            log.info(
                "parked prepulls unparked: node labels or taints changed",
                count=len(unparks),
                nodes=sorted({c.node for c in changes}),
            )
    return await unit.append(facts)
