"""The figures ``/metrics`` reads from the ledger at scrape time (every worker reads the same)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.statements import statement
from worker.domain.figures import LedgerFigures, PrepullTargetFigures
from worker.domain.images import Repository

__all__ = ["FiguresStore"]

_LAST_SUCCESS = text(
    "SELECT max(finished_at) FROM ledger.refreshes"
    " WHERE registry = :registry AND repository = :repository AND status = 'completed'"
)

_TARGETS = statement("figures/targets").clause

_PREPULLS = statement("figures/prepulls").clause

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
