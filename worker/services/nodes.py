"""Recording node inventories: NodeSeen on change and image-list changes, per batch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import structlog

from worker.domain.messages import Delivery, NodeInventory
from worker.domain.node_observation import KnownNode, NodeRules, decide_node
from worker.domain.prepull import Fact

__all__ = ["NodeLedger", "record_inventories"]

log = structlog.get_logger("imageledger.nodes")


class NodeLedger(Protocol):
    """What recording inventories needs of the unit of work."""

    async def known_nodes(self, names: Iterable[str]) -> dict[str, KnownNode]:
        """What is known of these nodes (absent: never seen)."""

    async def append(self, facts: Sequence[Fact]) -> dict[str, int]:
        """Append facts; a known key adds nothing. Returns new events by type."""


async def record_inventories(
    unit: NodeLedger, deliveries: Sequence[Delivery], rules: NodeRules
) -> dict[str, int]:
    """Decide every ``node.inventory`` of the batch in arrival order against the nodes as
    known (including the batch's earlier messages), then append the facts at once."""
    messages = [
        (d.message, d.message_id) for d in deliveries if isinstance(d.message, NodeInventory)
    ]
    if not messages:
        return {}
    known = await unit.known_nodes(m.node for m, _ in messages)
    facts: list[Fact] = []
    for message, message_id in messages:
        decision = decide_node(known.get(message.node), message, message_id, rules)
        known[message.node] = decision.node
        facts.extend(decision.facts)
        if decision.facts:
            log.debug(
                "node inventory recorded",
                node=message.node,
                message_id=message_id,
                facts=[f.event.TYPE for f in decision.facts],
            )
    return await unit.append(facts)
