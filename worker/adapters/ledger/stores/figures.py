"""The figures ``/metrics`` reads from the ledger at scrape time (every worker reads the same)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from worker.adapters.ledger.database import translate_errors
from worker.domain.figures import LedgerFigures, PrepullTargetFigures
from worker.domain.images import Repository

__all__ = ["FiguresStore"]

_LAST_SUCCESS = text(
    "SELECT max(finished_at) FROM ledger.refreshes"
    " WHERE registry = :registry AND repository = :repository AND status = 'completed'"
)

# Per prepull target: the counts of dashboard.prepull_status, and how long the counted node
# that has waited longest has lacked it, since the later of the digest's first sighting (else
# the tag's) and the node's: the earliest-seen node that lacks it (only where one does). The
# age is clamped at 0 (times come from the events).
_TARGETS = text(
    """
WITH counted AS (
    SELECT n.node, n.first_seen_at FROM ledger.nodes n WHERE n.eligible AND n.gone_at IS NULL
),
targets AS (
    SELECT
        t.registry, t.repository, t.tag, t.digest,
        coalesce(
            (SELECT min(h.valid_from) FROM ledger.tag_history h
             WHERE h.digest = t.digest AND h.registry = t.registry
               AND h.repository = t.repository),
            (SELECT min(h.valid_from) FROM ledger.tag_history h
             WHERE h.tag = t.tag AND h.registry = t.registry AND h.repository = t.repository)
        ) AS first_seen_at
    FROM ledger.prepull_targets t
    WHERE t.registry = :registry AND t.repository = :repository
)
SELECT
    s.registry, s.repository, s.tag, s.eligible_nodes, s.present_nodes, s.missing_nodes,
    coalesce((
        SELECT extract(epoch FROM now() - greatest(x.first_seen_at, c.first_seen_at))
        FROM counted c
        WHERE s.missing_nodes > 0 AND NOT EXISTS (
            SELECT 1 FROM ledger.node_images ni
            WHERE ni.node = c.node AND ni.digest = x.digest AND ni.present
        )
        ORDER BY c.first_seen_at
        LIMIT 1
    ), 0) AS oldest_missing_age_seconds
FROM dashboard.prepull_status s
JOIN targets x ON x.registry = s.registry AND x.repository = s.repository AND x.tag = s.tag
ORDER BY s.display_position, s.tag
"""
)

_PREPULLS = text(
    """
SELECT CASE prepull_state WHEN 'requested' THEN 'in_flight' ELSE prepull_state END, count(*)
FROM ledger.node_images
WHERE (prepull_state IN ('requested', 'failed', 'parked') AND present IS NOT TRUE)
   OR prepull_state = 'succeeded'
GROUP BY prepull_state
"""
)

_OUTBOX = text(
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)"
    " FROM ledger.outbox WHERE published_at IS NULL"
)


class FiguresStore:
    """Reads `LedgerFigures` for one repository in one read-only transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def figures(self, repository: Repository) -> LedgerFigures:
        """The figures now.

        Raises
        ------
        LedgerError
            The database cannot be read (TransientLedgerError when it is away).
        """
        params = {"registry": repository.registry, "repository": repository.repository}
        async with translate_errors("read the metrics' figures"), self._engine.connect() as conn:
            last = (await conn.execute(_LAST_SUCCESS, params)).scalar_one_or_none()
            targets = await _targets(conn, params)
            prepulls = {str(r[0]): int(r[1]) for r in await conn.execute(_PREPULLS)}
            backlog, oldest = (await conn.execute(_OUTBOX)).one()
        return LedgerFigures(
            registry=repository.registry,
            repository=repository.repository,
            last_refresh_success=last,
            targets=targets,
            prepulls=prepulls,
            outbox_backlog=int(backlog),
            outbox_oldest_age_seconds=max(0.0, float(oldest)),
        )


async def _targets(
    conn: AsyncConnection, params: dict[str, str]
) -> tuple[PrepullTargetFigures, ...]:
    rows = await conn.execute(_TARGETS, params)
    return tuple(
        PrepullTargetFigures(
            registry=r.registry,
            repository=r.repository,
            tag=r.tag,
            eligible_nodes=int(r.eligible_nodes),
            present_nodes=int(r.present_nodes),
            missing_nodes=int(r.missing_nodes),
            oldest_missing_age_seconds=max(0.0, float(r.oldest_missing_age_seconds)),
        )
        for r in rows
    )
