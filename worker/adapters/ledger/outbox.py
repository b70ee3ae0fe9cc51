"""The outbox: outbound messages written in the fold transaction, relayed with confirms.

Contract — at least once, with a stable id. ``write_outbox`` inserts rows of
``ledger.outbox`` inside the caller's ledger transaction, so a message exists exactly when
the events that caused it were committed (a crash can neither lose nor invent one). The
relay publishes unpublished rows in ``id`` order, waits for each publisher confirm, then
marks the rows published. A crash between the confirm and the mark publishes those rows
again after restart, under the same ``message_id``: consumers drop duplicates by it.

Order: rows are published in ``id`` order, which is commit order as long as every
``write_outbox`` happens inside a ``LedgerTransaction`` (appends are serialized by the
event log's advisory lock). One relay runs at a time (an advisory lock of its own), so
several workers never interleave.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

import cattrs
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.statements import Statement
from worker.converter import converter as default_converter
from worker.domain.messages import OutboundMessage, Outgoing

__all__ = [
    "RELAY_LOCK_KEY",
    "OutboxPublisher",
    "OutboxRelay",
    "outbox_message_id",
    "write_outbox",
]

RELAY_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"imageledger.outbox").digest()[:8], "big", signed=True
)
"""The advisory lock that lets one relay publish at a time."""

log = structlog.get_logger(__name__)

_COLUMNS = ("message_id", "routing_key", "body", "headers")
_INSERT = Statement(
    "INSERT INTO ledger.outbox (message_id, routing_key, body, headers)"
    " SELECT * FROM unnest(CAST(:message_id AS text[]), CAST(:routing_key AS text[]),"
    " CAST(:body AS jsonb[]), CAST(:headers AS jsonb[]))"
    " ON CONFLICT (message_id) DO NOTHING RETURNING id"
)
_PENDING = text(
    "SELECT id, message_id, routing_key, body::text AS body, headers::text AS headers "
    "FROM ledger.outbox WHERE published_at IS NULL ORDER BY id LIMIT :limit"
)
_MARK = text("UPDATE ledger.outbox SET published_at = now() WHERE id = ANY(:ids)")
_BACKLOG = text("SELECT count(*) FROM ledger.outbox WHERE published_at IS NULL")


class OutboxPublisher(Protocol):
    """What the relay publishes through (``worker.adapters.broker.connection.Broker``)."""

    async def publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Publish persistently and return once the broker confirmed."""


def outbox_message_id(routing_key: str, body: str) -> str:
    """The default message id: a hash of the routing key and the JSON body."""
    return "sha256:" + hashlib.sha256(f"{routing_key}\x00{body}".encode()).hexdigest()


def _rows(
    messages: Sequence[OutboundMessage | Outgoing], conv: cattrs.Converter
) -> list[tuple[str, str, str, str]]:
    dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    rows: list[tuple[str, str, str, str]] = []
    seen: set[str] = set()
    for item in messages:
        outgoing = item if isinstance(item, Outgoing) else Outgoing(item)
        routing_key = outgoing.message.ROUTING_KEY
        body = dumps(conv.unstructure(outgoing.message))
        message_id = outgoing.message_id or outbox_message_id(routing_key, body)
        if message_id in seen:
            continue
        seen.add(message_id)
        rows.append((message_id, routing_key, body, dumps(dict(outgoing.headers))))
    return rows


async def write_outbox(
    driver: Any,
    messages: Sequence[OutboundMessage | Outgoing],
    conv: cattrs.Converter | None = None,
) -> int:
    """Insert messages into ``ledger.outbox`` on the caller's connection and transaction
    (``LedgerTransaction.driver``, an asyncpg connection). A message id already stored is
    skipped, so refolding a batch adds nothing. Returns how many rows were new."""
    rows = _rows(messages, conv or default_converter)
    if not rows:
        return 0
    columns = (list(column) for column in zip(*rows, strict=True))
    async with translate_errors("write the outbox"):
        inserted = await _INSERT.fetch(driver, **dict(zip(_COLUMNS, columns, strict=True)))
    return len(inserted)


BUSY_RETRY = 0.05
"""Seconds a relay waits before trying the lock again while another relay holds it."""


class OutboxRelay:
    """Publishes ``ledger.outbox`` in order; ``run`` loops until ``stop``."""

    def __init__(
        self,
        engine: AsyncEngine,
        publisher: OutboxPublisher,
        *,
        batch_size: int = 100,
        poll_interval: timedelta = timedelta(seconds=1),
        max_backoff: timedelta = timedelta(seconds=30),
    ) -> None:
        self._engine = engine
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll = poll_interval.total_seconds()
        self._max_backoff = max_backoff.total_seconds()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    async def relay_once(self) -> int:
        """Publish one batch of unpublished rows in ``id`` order and mark them; returns how
        many were published (0 when another relay holds the lock). On a publish failure the
        rows confirmed so far are marked, then the error is raised."""
        return await self._relay() or 0

    async def _relay(self) -> int | None:
        """``relay_once``, but None when another relay holds the lock."""
        error: Exception | None = None
        published: list[int] = []
        async with translate_errors("relay the outbox"), self._engine.begin() as conn:
            if not await self._lock(conn):
                return None
            rows = (await conn.execute(_PENDING, {"limit": self._batch_size})).all()
            # All at once: the channel sends them in this order and the broker's
            # confirmations come back together, instead of one round trip per row.
            results = await asyncio.gather(
                *(
                    self._publisher.publish(
                        row.routing_key,
                        row.body.encode(),
                        message_id=row.message_id,
                        headers=json.loads(row.headers),
                    )
                    for row in rows
                ),
                return_exceptions=True,
            )
            # Marked: the rows before the first failure, so the outbox goes out in order;
            # any confirmed after it go out again, with the same ids.
            for row, result in zip(rows, results, strict=True):
                if isinstance(result, Exception):
                    error = result
                    break
                if isinstance(result, BaseException):
                    raise result
                published.append(row.id)
            if published:
                await conn.execute(_MARK, {"ids": published})
        if published:
            log.debug("outbox relayed", count=len(published), last_id=published[-1])
        if error is not None:
            raise error
        return len(published)

    @staticmethod
    async def _lock(conn: AsyncConnection) -> bool:
        result = await conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RELAY_LOCK_KEY}
        )
        return bool(result.scalar_one())

    async def backlog(self) -> int:
        """How many rows wait to be published (the outbox backlog gauge)."""
        async with translate_errors("read the outbox"), self._engine.connect() as conn:
            return int((await conn.execute(_BACKLOG)).scalar_one())

    def wake(self) -> None:
        """Relay now rather than at the next poll (call after a fold committed)."""
        self._wake.set()

    def stop(self) -> None:
        """Let ``run`` return after the batch in hand."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Relay until ``stop``: full batches back to back, otherwise every poll interval or
        on ``wake``; failures (database or broker away) back off and retry. While another
        worker's relay holds the lock, try again shortly (``BUSY_RETRY``), not at the next
        poll: rows this worker wrote since the holder read the outbox would wait a poll."""
        backoff = 0.0
        while not self._stopping.is_set():
            try:
                count = await self._relay()
            except Exception as exc:
                backoff = min(max(backoff * 2, self._poll), self._max_backoff)
                log.warning("outbox relay failed; retrying", error=str(exc), delay=backoff)
                await self._sleep(backoff)
                continue
            backoff = 0.0
            if count is None:
                await self._sleep(min(self._poll, BUSY_RETRY))
            elif count < self._batch_size:
                await self._sleep(self._poll)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            return
        finally:
            self._wake.clear()
