"""``ledger.messages``: the id and body hash of every folded message, written in the
transaction that folds it (one message id, one effect)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.statements import Statement

__all__ = ["PRUNE_MESSAGES", "record_messages", "recorded_bodies"]

_RECORDED = Statement(
    "SELECT message_id, body_sha256 FROM ledger.messages"
    " WHERE message_id = ANY(CAST(:message_ids AS text[]))"
)
_RECORD = Statement(
    "INSERT INTO ledger.messages (message_id, body_sha256, routing_key)"
    " SELECT * FROM unnest(CAST(:message_ids AS text[]), CAST(:bodies AS text[]),"
    " CAST(:routing_keys AS text[])) ON CONFLICT (message_id) DO NOTHING"
)
PRUNE_MESSAGES = "DELETE FROM ledger.messages WHERE recorded_at < :cutoff"
"""Rows recorded before the cutoff (``imageledger prune``)."""


async def recorded_bodies(db: Any, message_ids: Iterable[str]) -> dict[str, str]:
    """Message id -> body hash, for those of ``message_ids`` already folded."""
    wanted = sorted(set(message_ids))
    if not wanted:
        return {}
    async with translate_errors("read folded message ids"):
        rows = await _RECORDED.fetch(db, message_ids=wanted)
    return {r[0]: r[1] for r in rows}


async def record_messages(db: Any, rows: Sequence[tuple[str, str, str]]) -> None:
    """Record (message id, body hash, routing key) rows in the caller's transaction."""
    if not rows:
        return
    ids, bodies, keys = (list(column) for column in zip(*rows, strict=True))
    async with translate_errors("record folded message ids"):
        await _RECORD.execute(db, message_ids=ids, bodies=bodies, routing_keys=keys)
