"""``imageledger migrate`` and ``imageledger rebuild``: the schema and the projections."""

from __future__ import annotations

import asyncio

import click

from worker import factory
from worker.cli.common import (
    Command,
    database_url_option,
    json_option,
    print_json,
    progress_reporter,
)

__all__ = ["migrate_command", "progress_reporter", "rebuild_command"]


@click.command("migrate", cls=Command)
@database_url_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@json_option
def migrate_command(database_url: str, revision: str, as_json: bool) -> None:
    """Create or upgrade the database schema (ledger tables, dashboard views, reader role)."""
    ops = factory.Operations(database_url)
    current = asyncio.run(ops.migrate(revision))
    if as_json:
        print_json({"database": ops.database, "revision": current})
        return
    click.echo(f"database {ops.database} is at revision {current}")


@click.command("rebuild", cls=Command)
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

    Progress goes to stderr (a bar on a terminal, none with --json); the result to stdout
    (an object with --json).
    """
    ops = factory.Operations(database_url)
    report = asyncio.run(ops.rebuild(chunk, progress_reporter(as_json=as_json)))
    if as_json:
        print_json(
            {
                "database": ops.database,
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
