"""One message id, one effect: a batch's deliveries checked against the ids already folded,
inside the batch's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import structlog

from worker.domain.messages import (
    MESSAGE_ID_REUSED,
    DeliveriesRejected,
    Delivery,
    sort_arrivals,
)

__all__ = ["MessageLedger", "first_arrivals"]

log = structlog.get_logger("imageledger.arrivals")


class MessageLedger(Protocol):
    """The folded message ids, in the batch's unit of work."""

    async def recorded_bodies(self, message_ids: Iterable[str]) -> dict[str, str]:
        """Message id -> body hash, for the ids already folded."""

    async def record_messages(self, deliveries: Sequence[Delivery]) -> None:
        """Record these deliveries' ids and body hashes in this transaction."""


async def first_arrivals(unit: MessageLedger, deliveries: Sequence[Delivery]) -> list[Delivery]:
    """The deliveries to fold, recorded in the unit: a delivery whose id and body were
    folded before adds nothing; one whose id names another body raises DeliveriesRejected
    (the unit rolls back, the consumer dead-letters it and hands the rest back)."""
    if not deliveries:
        return []
    arrivals = sort_arrivals(
        deliveries, await unit.recorded_bodies(d.message_id for d in deliveries)
    )
    if arrivals.reused:
        for i in arrivals.reused:
            log.warning(
                "message id reused with a different body",
                message_id=deliveries[i].message_id,
                routing_key=deliveries[i].routing_key,
            )
        raise DeliveriesRejected(dict.fromkeys(arrivals.reused, MESSAGE_ID_REUSED))
    fresh = [deliveries[i] for i in arrivals.fresh]
    await unit.record_messages([d for d in fresh if d.body_sha256 is not None])
    return fresh
