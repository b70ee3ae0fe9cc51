"""Read-only queries of the dashboard views for the operator commands."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.statements import statement

__all__ = ["menu_rows", "node_status_rows", "prepull_status_rows"]

_MENU = text(
    "SELECT registry, repository, section, position, tag, digest, reference, display_name,"
    " prepulled FROM dashboard.menu"
)
_STATUS = statement("dashboard/status").clause

_NODES = statement("dashboard/nodes").clause


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
