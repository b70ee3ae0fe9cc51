"""``imageledger prune``: drop published outbox rows and folded message ids that no longer
matter (never events)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import click

from worker import factory
from worker.cli.common import Command, database_url_option, fail, json_option, print_json
from worker.domain.durations import parse_duration

__all__ = ["prune_command"]

MINIMUM_AGE = timedelta(days=1)
"""Younger rows may still matter: a message can be redelivered for hours after a failure."""


@click.command("prune", cls=Command)
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
    """Delete published outbox rows and folded message ids older than --older-than.

    The event log is never pruned (rebuild and time travel need all of it). A message id
    pruned no longer refuses another body under that id. Outbox rows not
    yet published, and the prepull.complete rows of images still prepulled, are kept.
    """
    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        fail(f"--older-than {older_than!r}: {exc}")
    if age < MINIMUM_AGE:
        fail(f"--older-than {older_than!r}: must be at least 1d (messages may be redelivered)")
    try:
        cutoff = datetime.now(tz=UTC) - age
    except OverflowError:
        fail(f"--older-than {older_than!r}: reaches back before the year 1")
    report = asyncio.run(factory.Operations(database_url).prune(cutoff, dry_run=dry_run))
    if as_json:
        print_json(
            {
                "cutoff": report.cutoff,
                "outbox": report.outbox,
                "messages": report.messages,
                "dry_run": report.dry_run,
            }
        )
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {report.outbox:,} published outbox rows and {report.messages:,} folded"
        f" message ids older than {cutoff.isoformat(timespec='seconds')}"
    )
