"""``imageledger prune``: drop old bookkeeping rows (processed message ids, sent outbox rows)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import click

from worker.adapters.database import LedgerError, make_engine
from worker.adapters.database import database_url as resolve_database_url
from worker.adapters.retention import PruneReport, prune
from worker.cli.common import CommandError, database_url_option, fail, json_option, print_json
from worker.domain.durations import parse_duration

__all__ = ["prune_command"]

MINIMUM_AGE = timedelta(days=1)
"""Younger rows may still matter: a message can be redelivered for hours after a failure."""


async def _prune(url: str, cutoff: datetime, dry_run: bool) -> PruneReport:
    engine = make_engine(resolve_database_url(url))
    try:
        return await prune(engine, cutoff, dry_run=dry_run)
    except LedgerError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        await engine.dispose()


@click.command("prune")
@database_url_option
@click.option(
    "--older-than",
    default="30d",
    show_default=True,
    help="Age of the rows to delete (a duration: 30d, 8w, ...); at least 1d.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@json_option
def prune_command(database_url: str, older_than: str, dry_run: bool, as_json: bool) -> None:
    """Delete processed-message ids and published outbox rows older than --older-than.

    The event log is never pruned (rebuild and time travel need all of it). Outbox rows not
    yet published, and the prepull.complete rows of images still prepulled, are kept.
    """
    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        fail(f"--older-than {older_than!r}: {exc}")
    if age < MINIMUM_AGE:
        fail(f"--older-than {older_than!r}: must be at least 1d (messages may be redelivered)")
    cutoff = datetime.now(tz=UTC) - age
    report = asyncio.run(_prune(database_url, cutoff, dry_run))
    if as_json:
        print_json(
            {
                "cutoff": report.cutoff,
                "processed_messages": report.processed_messages,
                "outbox": report.outbox,
                "dry_run": report.dry_run,
            }
        )
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {report.processed_messages:,} processed message ids and {report.outbox:,} "
        f"published outbox rows older than {cutoff.isoformat(timespec='seconds')}"
    )
