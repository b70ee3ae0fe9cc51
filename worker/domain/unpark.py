"""Unparking parked (image, node) pairs: one ``PrepullUnparked`` per pair, keyed by its park.

The idempotency key names the park a fact undoes (the log position of the ``PrepullParked``
event), so repeating an unpark adds nothing, and a pair parked again later has a new park
and can be unparked again (DOMAIN.md difference 4: "until ... an operator command").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from attrs import frozen

from worker.domain.events import PrepullUnparked
from worker.domain.prepull import Fact

__all__ = ["DEFAULT_REASON", "ParkedPair", "unpark_facts"]

DEFAULT_REASON = "operator command"


@frozen
class ParkedPair:
    """A parked (node, digest) pair, with the park event it is parked by."""

    registry: str
    repository: str
    node: str
    digest: str
    tag: str | None
    failures: int
    reason: str | None
    parked_position: int
    parked_at: datetime | None = None


def unpark_facts(pairs: Sequence[ParkedPair], reason: str, now: datetime) -> list[Fact]:
    """One ``PrepullUnparked`` per pair, keyed by the park it undoes."""
    return [
        Fact(
            PrepullUnparked(
                registry=p.registry,
                repository=p.repository,
                digest=p.digest,
                node=p.node,
                reason=reason,
                occurred_at=now,
            ),
            f"prepull.unparked:{p.node}:{p.digest}:{p.parked_position}",
        )
        for p in pairs
    ]
