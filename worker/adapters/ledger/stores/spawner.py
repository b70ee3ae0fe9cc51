"""The spawner's reads at one log position: the stored catalog rows with the current nodes
(what the API serves), and current tags with nodes from the dashboard views (what
resolving evaluates)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker import converter as wire
from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.eventlog import log_head
from worker.domain.images import Repository, TagEntry
from worker.domain.served import ServedCatalog, StoredImage, StoredNode, StoredTarget
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

_WHERE = "WHERE registry = :registry AND repository = :repository"
_RECOMMENDED = text(f"SELECT recommended_tag FROM ledger.policies {_WHERE}")
_IMAGES = text(
    "SELECT tag, digest, display_name, aliases, architecture, alias_target"
    f" FROM ledger.images {_WHERE} ORDER BY position, tag"
)
_TARGETS = text(
    "SELECT tag, digest, reference, display_name, image_type, size_bytes"
    f" FROM ledger.prepull_targets {_WHERE} ORDER BY position, tag"
)
_CURRENT = text("SELECT node, eligible, comment FROM ledger.nodes WHERE gone_at IS NULL")
_HELD = text(
    "SELECT ni.node, ni.digest, ni.size_bytes FROM ledger.node_images ni"
    " JOIN ledger.nodes n ON n.node = ni.node WHERE ni.present AND n.gone_at IS NULL"
)


def _held(present: Sequence[Row[Any]]) -> dict[str, dict[str, int | None]]:
    """Per node, the digests it holds with their sizes."""
    held: dict[str, dict[str, int | None]] = {}
    for row in present:
        held.setdefault(row.node, {})[row.digest] = row.size_bytes
    return held


class SpawnerStore:
    """Implements the spawner's ``SpawnerLedger`` and ``ServedLedger`` ports on PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def position(self) -> int:
        """The position of the log's last event (0 for an empty log)."""
        async with translate_errors("read the event log"), self._engine.connect() as conn:
            return await log_head(conn)

    async def _snapshot(
        self, what: str, repository: Repository, *queries: TextClause
    ) -> tuple[int, list[Sequence[Row[Any]]]]:
        """The rows of ``queries`` (each given the repository's key) read in one
        repeatable-read snapshot, with the log position it reflects (appends commit in
        position order, so nothing below it is missing)."""
        where = {"registry": repository.registry, "repository": repository.repository}
        async with translate_errors(what), self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                position = await log_head(conn)
                return position, [(await conn.execute(q, where)).all() for q in queries]

    async def served(self, repository: Repository) -> ServedCatalog:
        """The repository's stored catalog rows (``ledger.images``, ``ledger.prepull_targets``,
        the policy's recommended tag) and the current nodes with what they hold."""
        queries = (_RECOMMENDED, _IMAGES, _TARGETS, _CURRENT, _HELD)
        position, found = await self._snapshot("read the stored catalog", repository, *queries)
        recommended, images, targets, nodes, present = found
        held = _held(present)
        return ServedCatalog.of(
            position,
            repository,
            recommended[0].recommended_tag if recommended else None,
            tuple(
                StoredImage(
                    r.tag,
                    r.digest,
                    r.display_name,
                    tuple(r.aliases),
                    r.architecture,
                    r.alias_target,
                )
                for r in images
            ),
            tuple(
                StoredTarget(
                    r.tag, r.digest, r.reference, r.display_name, r.image_type, r.size_bytes
                )
                for r in targets
            ),
            tuple(StoredNode(r.node, r.eligible, r.comment, held.get(r.node, {})) for r in nodes),
        )

    async def state(self, repository: Repository) -> LedgerSnapshot:
        """Current tags and nodes (the dashboard views), read in one snapshot."""
        queries = (_TAGS, _NODES, _PRESENT)
        position, found = await self._snapshot("read the dashboard views", repository, *queries)
        tags, nodes, present = found
        held = _held(present)
        return LedgerSnapshot(
            position=position,
            entries=tuple(TagEntry(row.tag, row.digest) for row in tags),
            nodes=tuple(
                wire.view_node(row.node, row.labels, row.taints, held.get(row.node, {}))
                for row in nodes
            ),
        )
