"""``imageledger dead-letters list|replay|purge``: the messages the workers dead-lettered."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

import click

from worker import factory
from worker.cli.common import (
    CommandError,
    Group,
    amqp_url_option,
    fail,
    json_option,
    prefix_option,
    print_json,
    print_rows,
)
from worker.domain.dead_letters import DeadLetter, Selection

__all__ = ["dead_letters_group"]

COLUMNS = [
    "message_id",
    "routing_key",
    "source_queue",
    "attempts",
    "dead_lettered_at",
    "size",
    "reason",
    "preview",
]


def _row(letter: DeadLetter, short: bool) -> dict[str, Any]:
    reason = letter.reason or ""
    return {
        "message_id": letter.message_id,
        "routing_key": letter.routing_key,
        "source_queue": letter.source_queue,
        "reason": reason[:59] + "…" if short and len(reason) > 60 else reason,
        "attempts": letter.attempts,
        "dead_lettered_at": letter.dead_lettered_at,
        "size": letter.size,
        "preview": letter.preview(40 if short else 200),
        "returns": letter.returns,
    }


def _selection(ids: tuple[str, ...], select_all: bool, routing_key: str | None) -> Selection:
    """The dead letters an option set names, or a bad-input error when it names none."""
    if not ids and not select_all and routing_key is None:
        fail("nothing selected: give --id MESSAGE_ID (repeatable), --routing-key KEY or --all")
    if ids and select_all:
        fail("--id and --all exclude each other")
    return Selection(frozenset(ids), routing_key, select_all)


def _check_found(selection: Selection, found: list[DeadLetter], queue: str) -> None:
    missing = selection.missing(found)
    if missing:
        fail(f"no dead letter with message id {', '.join(missing)} in {queue}")


def _plural(count: int) -> str:
    return f"{count} dead letter{'' if count == 1 else 's'}"


selection_options = [
    click.option("--id", "ids", multiple=True, help="A message id to select (repeatable)."),
    click.option(
        "--routing-key", help="Select by original routing key (alone, or narrowing --id/--all)."
    ),
    click.option("--all", "select_all", is_flag=True, help="Select every dead letter."),
]


def with_selection(command: Callable[..., None]) -> Callable[..., None]:
    """Attach --id, --routing-key and --all."""
    for option in reversed(selection_options):
        command = option(command)
    return command


@click.group("dead-letters", cls=Group)
def dead_letters_group() -> None:
    """Look at, replay or delete the messages the workers dead-lettered.

    They are in the queue <prefix>.dead, where <prefix> is --prefix or
    IMAGELEDGER_BROKER_PREFIX (default imageledger): it must be the workers' own.
    """


@dead_letters_group.command("list")
@amqp_url_option
@prefix_option
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most N."
)
@json_option
def list_command(amqp_url: str | None, prefix: str, limit: int, as_json: bool) -> None:
    """Show dead letters, oldest first, without taking them off the queue (named first)."""
    ops = factory.Operations(amqp_url=amqp_url, prefix=prefix)
    total, letters = asyncio.run(ops.dead_letters(limit))
    if as_json:
        rows = [_row(letter, short=False) for letter in letters]
        print_json(
            {"queue": ops.dead_queue, "total": total, "shown": len(rows), "dead_letters": rows}
        )
        return
    if not letters:
        click.echo(f"no dead letters in {ops.dead_queue}")
        return
    click.echo(f"{_plural(total)} in {ops.dead_queue}:")
    print_rows([_row(letter, short=True) for letter in letters], COLUMNS, False)
    if total > len(letters):
        click.echo(f"({len(letters)} of {total} shown; use --limit to see more)")


@dead_letters_group.command("replay")
@amqp_url_option
@prefix_option
@with_selection
@json_option
def replay_command(
    amqp_url: str | None,
    prefix: str,
    ids: tuple[str, ...],
    routing_key: str | None,
    select_all: bool,
    as_json: bool,
) -> None:
    """Publish the selected dead letters again under their original routing key.

    Each keeps its message id and body, starts again at attempt 1, and leaves the dead
    queue only once RabbitMQ confirmed the new copy.
    """
    selection = _selection(ids, select_all, routing_key)
    ops = factory.Operations(amqp_url=amqp_url, prefix=prefix)
    report = asyncio.run(ops.replay_dead_letters(selection))
    name = ops.dead_queue
    if as_json:
        print_json(
            {
                "queue": name,
                "replayed": [letter.message_id for letter in report.replayed],
                "failed": [
                    {"message_id": letter.message_id, "error": error}
                    for letter, error in report.failed
                ],
            }
        )
    else:
        click.echo(f"replayed {_plural(len(report.replayed))} from {name}")
    if report.failed:
        details = "; ".join(f"{letter.message_id}: {error}" for letter, error in report.failed)
        raise CommandError(f"{_plural(len(report.failed))} not replayed, kept in {name}: {details}")
    _check_found(selection, [*report.replayed, *(letter for letter, _ in report.failed)], name)


@dead_letters_group.command("purge")
@amqp_url_option
@prefix_option
@with_selection
@click.option("--yes", is_flag=True, help="Delete without asking.")
@json_option
def purge_command(
    amqp_url: str | None,
    prefix: str,
    ids: tuple[str, ...],
    routing_key: str | None,
    select_all: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Delete the selected dead letters for good (asks first unless --yes)."""
    selection = _selection(ids, select_all, routing_key)
    ops = factory.Operations(amqp_url=amqp_url, prefix=prefix)
    if not yes:
        _confirm(ops, selection)
    deleted = asyncio.run(ops.purge_dead_letters(selection))
    if as_json:
        print_json({"queue": ops.dead_queue, "deleted": [letter.message_id for letter in deleted]})
    else:
        click.echo(f"deleted {_plural(len(deleted))} from {ops.dead_queue}")
    _check_found(selection, deleted, ops.dead_queue)


def _confirm(ops: factory.Operations, selection: Selection) -> None:
    """Ask on the terminal; without one, refuse (exit 2)."""
    if not sys.stdin.isatty():
        fail("purge deletes dead letters for good: pass --yes (no terminal to ask)")
    count = asyncio.run(ops.count_dead_letters(selection))
    if count == 0:
        return
    question = f"Delete {_plural(count)} from {ops.dead_queue} for good?"
    if not click.confirm(question, default=False):
        raise CommandError("nothing deleted")
