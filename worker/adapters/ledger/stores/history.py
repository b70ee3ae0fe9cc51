"""Read-only queries for ``imageledger history``: tag stretches, node images, node events.

Tags are read from ``dashboard.tag_history`` and ``dashboard.tag_digest_at``, the images a
node held from ``dashboard.node_images_at``; a node's appear/disappear history has no view,
so its events are read from the log (``ledger.events``) and decoded by the one converter,
which upgrades old payloads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.statements import statement
from worker.converter import converter
from worker.domain.events import Event
from worker.domain.projection import TagInterval

__all__ = ["HistoryStore", "decode_event"]

_TAG_HISTORY = text(
    "SELECT registry, repository, tag, seq, digest, valid_from, valid_until"
    " FROM dashboard.tag_history WHERE tag = :tag"
    " AND (CAST(:registry AS text) IS NULL OR registry = :registry)"
    " AND (CAST(:repository AS text) IS NULL OR repository = :repository)"
    " ORDER BY registry, repository, seq"
)
_TAG_AT = text(
    "SELECT registry, repository, tag, digest, valid_from, valid_until"
    " FROM dashboard.tag_digest_at(:tag, :at)"
    " WHERE (CAST(:registry AS text) IS NULL OR registry = :registry)"
    " AND (CAST(:repository AS text) IS NULL OR repository = :repository)"
    " ORDER BY registry, repository"
)
_NODE = text(
    "SELECT node, eligible, comment, current, first_seen_at, gone_at, truncated"
    " FROM dashboard.nodes WHERE node = :node"
)
_NODE_AT = text(
    "SELECT digest, observed_at, source FROM dashboard.node_images_at(:node, :at) ORDER BY digest"
)
_NAMES = text(
    "SELECT DISTINCT ON (digest) digest, registry, repository, tag, display_name,"
    " display_position FROM dashboard.images WHERE digest = ANY(CAST(:digests AS text[]))"
    " ORDER BY digest, registry, repository"
)
_NODE_EVENTS = statement("history/node_events").clause


def decode_event(type_name: str, version: int, data: Any) -> Event:
    """A stored event payload as its (upgraded) event class."""
    payload = json.loads(data) if isinstance(data, str) else data
    tagged = {"type": type_name, "version": version, "data": payload}
    event: Event = converter.structure(tagged, Event)  # type: ignore[arg-type]
    return event


class HistoryStore:
    """Reads the history of tags and nodes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _rows(self, query: Any, what: str, **params: Any) -> list[dict[str, Any]]:
        async with translate_errors(what), self._engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query, params)]

    async def tag_stretches(
        self, tag: str, registry: str | None = None, repository: str | None = None
    ) -> list[TagInterval]:
        """Every stretch of the tag's history, per repository holding it (or the one given)."""
        where = {"tag": tag, "registry": registry, "repository": repository}
        rows = await self._rows(_TAG_HISTORY, "read dashboard.tag_history", **where)
        return [TagInterval(**r) for r in rows]

    async def tag_at(
        self, tag: str, at: datetime, registry: str | None = None, repository: str | None = None
    ) -> list[dict[str, Any]]:
        """Per repository, the stretch of the tag's history in force at ``at``."""
        where = {"tag": tag, "at": at, "registry": registry, "repository": repository}
        return await self._rows(_TAG_AT, "read dashboard.tag_digest_at", **where)

    async def node(self, node: str) -> dict[str, Any] | None:
        """The node's ``dashboard.nodes`` row, or None for a node never seen."""
        rows = await self._rows(_NODE, "read dashboard.nodes", node=node)
        return rows[0] if rows else None

    async def node_images_at(self, node: str, at: datetime) -> list[dict[str, Any]]:
        """The digests the node held at ``at`` (``dashboard.node_images_at``)."""
        return await self._rows(_NODE_AT, "read dashboard.node_images_at", node=node, at=at)

    async def image_names(self, digests: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The primary image (registry, repository, tag, display name) of each known digest."""
        if not digests:
            return {}
        rows = await self._rows(_NAMES, "read dashboard.images", digests=sorted(set(digests)))
        return {r["digest"]: r for r in rows}

    async def node_events(self, node: str, until: datetime, limit: int) -> list[Event]:
        """The node's newest ``limit`` events observed at or before ``until``, in log order:
        labels/taints/eligibility, inventory changes, departures and prepull successes."""
        streams = {"node_stream": f"node:{node}", "prepull_stream": f"prepull:{node}"}
        rows = await self._rows(
            _NODE_EVENTS, "read the node's events", until=until, limit=limit, **streams
        )
        return [decode_event(r["type"], r["version"], r["data"]) for r in rows]
