"""Read-only queries of the dashboard views for the operator commands."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger.database import translate_errors

__all__ = ["menu_rows", "node_status_rows", "prepull_status_rows"]

_MENU = text(
    "SELECT registry, repository, section, position, tag, digest, reference, display_name,"
    " prepulled FROM dashboard.menu"
)
_STATUS = text(
    "SELECT s.registry, s.repository, s.tag, s.digest, s.display_name, s.display_position,"
    " s.eligible_nodes, s.present_nodes, s.missing_nodes, s.prepulled,"
    " coalesce(s.digest = r.digest, false) AS recommended"
    " FROM dashboard.prepull_status s"
    " LEFT JOIN ledger.menu_entries r ON r.registry = s.registry"
    " AND r.repository = s.repository AND r.section = 'radio' AND NOT r.requires_prepulled"
    " ORDER BY s.registry, s.repository, s.display_position"
)

_NODES = text(
    "SELECT n.node, n.eligible, n.comment AS reason,"
    " count(q.tag) AS missing_count,"
    " coalesce(array_agg(q.tag || CASE WHEN q.status = 'pending' THEN ''"
    " ELSE ' (' || q.status || ')' END ORDER BY q.display_position, q.tag)"
    " FILTER (WHERE q.tag IS NOT NULL), '{}') AS missing"
    " FROM dashboard.nodes n LEFT JOIN dashboard.prepull_queue q ON q.node = n.node"
    " WHERE n.current GROUP BY n.node, n.eligible, n.comment ORDER BY n.node"
)


async def _rows(engine: AsyncEngine, query: Any, what: str) -> list[dict[str, Any]]:
    async with translate_errors(what), engine.connect() as conn:
        return [dict(row._mapping) for row in await conn.execute(query)]


async def menu_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    """``dashboard.menu``: radio entries then dropdown entries, in display order."""
    return await _rows(engine, _MENU, "read dashboard.menu")


async def prepull_status_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    """``dashboard.prepull_status``: per target image, eligible nodes present / missing,
    and whether it is the recommended image (the one radio entry of the menu shown
    whether prepulled or not)."""
    return await _rows(engine, _STATUS, "read dashboard.prepull_status")


async def node_status_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Per current node: eligibility (with the reason why not) and the target images it still lacks,
    with their prepull state (from ``dashboard.nodes`` and ``dashboard.prepull_queue``)."""
    return await _rows(engine, _NODES, "read dashboard.nodes and dashboard.prepull_queue")
