"""Read-only queries of the dashboard views for the status page (``services.console``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.statements import statement
from worker.adapters.ledger.stores import dashboard

__all__ = ["ConsoleStore"]

Row = dict[str, Any]

_NODES = text(
    "SELECT node, eligible, comment AS reason, last_inventory_at, truncated, image_count"
    " FROM dashboard.nodes WHERE current ORDER BY node"
)
_PAIRS = text(
    "SELECT registry, repository, tag, digest, node, status, attempts, consecutive_failures,"
    " failures_total, requested_at, deadline, finished_at, reason, overdue"
    " FROM dashboard.prepull_queue ORDER BY display_position, tag, node"
)
_PRESENT = text(
    "SELECT node, digest, present_since, observed_at, source FROM dashboard.node_images"
    " WHERE present AND digest IN"
    " (SELECT digest FROM dashboard.prepull_targets WHERE digest IS NOT NULL)"
)
_REFRESHES = text(
    "SELECT refresh_id, registry, repository, status, started_at, finished_at,"
    " duration_seconds, tags_total, discovered, resolved, moved, removed, requests_total,"
    " retries, flagged_tags, reason FROM dashboard.refreshes LIMIT :limit"
)
_MOVES = statement("console/moves").clause


class ConsoleStore:
    """What the status page shows, read from the ``dashboard`` views."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _rows(self, query: Any, what: str, **params: Any) -> list[Row]:
        async with translate_errors(what), self._engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query, params)]

    async def targets(self) -> list[Row]:
        """Per target image, in display order: eligible nodes present and missing, and
        whether it is the recommended image."""
        return await dashboard.prepull_status_rows(self._engine)

    async def nodes(self) -> list[Row]:
        """The current nodes, eligible or not (with the reason), by name."""
        return await self._rows(_NODES, "read dashboard.nodes")

    async def pairs(self) -> list[Row]:
        """Every (image to pull, eligible node) pair still without the image, with its
        prepull state, attempts, last attempt and reason."""
        return await self._rows(_PAIRS, "read dashboard.prepull_queue")

    async def presence(self) -> list[Row]:
        """Where each target digest is present: node, digest, since when, learnt how."""
        return await self._rows(_PRESENT, "read dashboard.node_images")

    async def menu(self) -> list[Row]:
        """``dashboard.menu``: radio entries then dropdown entries."""
        return await dashboard.menu_rows(self._engine)

    async def refreshes(self, limit: int) -> list[Row]:
        """The newest ``limit`` refreshes, newest first."""
        return await self._rows(_REFRESHES, "read dashboard.refreshes", limit=limit)

    async def tag_moves(self, since: datetime) -> list[Row]:
        """Tags that moved after ``since``, newest first, with the primary tag of the
        digest each came from and went to."""
        return await self._rows(_MOVES, "read dashboard.tag_history", since=since)
