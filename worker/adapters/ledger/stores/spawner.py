"""The spawner's reads: current tags and nodes from the dashboard views, at one log position."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker import converter as wire
from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.eventlog import log_head
from worker.domain.images import Repository, TagEntry
from worker.domain.spawner import LedgerSnapshot

__all__ = ["SpawnerStore"]

_TAGS = text(
    "SELECT tag, digest FROM dashboard.tags WHERE registry = :registry"
    " AND repository = :repository ORDER BY tag"
)
_NODES = text("SELECT node, labels, taints FROM dashboard.nodes WHERE current ORDER BY node")
_PRESENT = text(
    "SELECT DISTINCT ni.node, ni.digest, ni.size_bytes FROM dashboard.node_images ni"
    " JOIN dashboard.nodes n ON n.node = ni.node WHERE ni.present AND n.current"
)


class SpawnerStore:
    """Implements the spawner's ``SpawnerLedger`` port on PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def position(self) -> int:
        """The position of the log's last event (0 for an empty log)."""
        async with translate_errors("read the event log"), self._engine.connect() as conn:
            return await log_head(conn)

    async def state(self, repository: Repository) -> LedgerSnapshot:
        """Tags and nodes read in one repeatable-read snapshot, with the log position it
        reflects (appends commit in position order, so nothing below it is missing)."""
        where = {"registry": repository.registry, "repository": repository.repository}
        async with translate_errors("read the dashboard views"), self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                position = await log_head(conn)
                tags = (await conn.execute(_TAGS, where)).all()
                nodes = (await conn.execute(_NODES)).all()
                present = (await conn.execute(_PRESENT)).all()
        held: dict[str, dict[str, int | None]] = {}
        for row in present:
            held.setdefault(row.node, {})[row.digest] = row.size_bytes
        return LedgerSnapshot(
            position=position,
            entries=tuple(TagEntry(row.tag, row.digest) for row in tags),
            nodes=tuple(
                wire.view_node(row.node, row.labels, row.taints, held.get(row.node, {}))
                for row in nodes
            ),
        )
