"""Retention: prune the bookkeeping rows that grow with traffic (never the event log)."""

from __future__ import annotations

from datetime import datetime

from attrs import frozen
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.messages import PRUNE_MESSAGES

__all__ = ["PruneReport", "prune"]

# A prepull.complete goes out once per image and digest because the outbox refuses a second
# row with its message_id: keep those rows while the digest is still a prepull target.
_OUTBOX = """
DELETE FROM ledger.outbox o
WHERE o.published_at IS NOT NULL AND o.published_at < :cutoff
  AND NOT (o.routing_key = 'prepull.complete'
           AND o.body ->> 'digest' IN (SELECT t.digest FROM ledger.prepull_targets t
                                       WHERE t.digest IS NOT NULL))
"""


@frozen
class PruneReport:
    """Rows removed (or, in a dry run, that would be)."""

    cutoff: datetime
    outbox: int
    dry_run: bool
    messages: int = 0
    """``ledger.messages`` rows (folded message ids) recorded before the cutoff."""


async def prune(engine: AsyncEngine, cutoff: datetime, *, dry_run: bool = False) -> PruneReport:
    """Delete outbox rows published before ``cutoff`` (except ``prepull.complete`` rows of
    current targets) and the ids of messages folded before it (``ledger.messages``); a dry
    run counts and rolls back. Unpublished rows are never touched."""
    async with translate_errors("prune"), engine.connect() as conn:
        transaction = await conn.begin()
        try:
            outbox = (await conn.execute(text(_OUTBOX), {"cutoff": cutoff})).rowcount
            messages = (await conn.execute(text(PRUNE_MESSAGES), {"cutoff": cutoff})).rowcount
        except BaseException:
            await transaction.rollback()
            raise
        if dry_run:
            await transaction.rollback()
        else:
            await transaction.commit()
    return PruneReport(cutoff, outbox, dry_run, messages)
