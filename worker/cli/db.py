"""``imageledger migrate`` and ``imageledger rebuild``: the schema and the projections."""

from __future__ import annotations

from typing import Any

import click

from worker.adapters.ledger import current_revision, rebuild_projections, safe_url, upgrade
from worker.cli.common import (
    database_url_option,
    json_option,
    print_json,
    progress_reporter,
    run_on_database,
)

__all__ = ["migrate_command", "progress_reporter", "rebuild_command"]


@click.command("migrate")
@database_url_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@json_option
def migrate_command(database_url: str, revision: str, as_json: bool) -> None:
    """Create or upgrade the database schema (ledger tables, dashboard views, reader role)."""

    async def action(engine: Any) -> str | None:
        await upgrade(engine, revision)
        return await current_revision(engine)

    current = run_on_database(database_url, action)
    if as_json:
        print_json({"database": safe_url(database_url), "revision": current})
        return
    click.echo(f"database {safe_url(database_url)} is at revision {current}")


@click.command("rebuild")
@database_url_option
@click.option(
    "--chunk",
    type=int,
    default=None,
    help="Positions folded per step [default: 100,000, or a tenth of a longer log].",
)
@json_option
def rebuild_command(database_url: str, chunk: int | None, as_json: bool) -> None:
    """Empty the projections and fold the whole event log again, in position order.

    Progress goes to stderr; the result to stdout (an object with --json).
    """
    report = run_on_database(
        database_url, lambda e: rebuild_projections(e, chunk=chunk, progress=progress_reporter())
    )
    if as_json:
        print_json(
            {
                "database": safe_url(database_url),
                "events": report.events,
                "rows_written": report.rows_written,
                "seconds": round(report.seconds, 3),
                "events_per_second": round(report.events_per_second, 1),
            }
        )
        return
    click.echo(
        f"rebuilt the projections from {report.events:,} events in {report.seconds:.1f} s "
        f"({report.events_per_second:,.0f} events/s)"
    )
