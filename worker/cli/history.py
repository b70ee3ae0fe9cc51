"""``imageledger history``: a tag's digests over time, or the images a node held, from the log."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import click
from attrs import asdict

from worker import factory
from worker.cli.common import (
    Command,
    database_url_option,
    fail,
    json_option,
    parse_image,
    parse_time,
    print_json,
    print_rows,
    short_digest,
)
from worker.domain.explain import ImageQuery
from worker.domain.history import TagChange
from worker.services.history import NodeHistory, TagAt

__all__ = ["history_command"]


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


def _cell(column: str, value: Any) -> str:
    if "digest" in column:
        return short_digest(value)
    if isinstance(value, datetime):
        return _when(value)
    return str(value) if value is not None else ""


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """An aligned table; digests shortened, times to the second."""
    print_rows(rows, columns, False, cell=_cell)


def _with_repository(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "repository": f"{r['registry']}/{r['repository']}",
             "digest": r["digest"] or "(not resolved)"} for r in rows]  # fmt: skip


def _show_changes(tag: str, changes: list[TagChange], as_json: bool) -> None:
    rows = [asdict(c) for c in changes]
    if as_json:
        print_json({"tag": tag, "changes": rows})
        return
    click.echo(f"history of tag {tag}:")
    _table(_with_repository(rows), ["at", "change", "digest", "previous_digest", "repository"])


def _show_tag_at(tag: str, at: datetime, result: TagAt, as_json: bool) -> None:
    if as_json:
        print_json({"tag": tag, "at": at, "digests": result.digests})
        return
    if not result.digests:
        click.echo(f"tag {tag} was in no repository at {_when(at)}"
                   f" (first seen at {_when(result.first_seen_at)})")  # fmt: skip
        return
    click.echo(f"tag {tag} at {_when(at)}:")
    _table(_with_repository(result.digests), ["repository", "digest", "valid_from", "valid_until"])


def _show_node(result: NodeHistory, limit: int, as_json: bool) -> None:
    if as_json:
        print_json(asdict(result))
        return
    images, changes = result.images, result.changes
    click.echo(f"node {result.node} held {len(images)} image(s) at {_when(result.at)}:")
    if images:
        _table(images, ["digest", "tag", "display_name", "source", "observed_at"])
    click.echo("")
    click.echo(f"history up to then (newest {limit} at most):")
    if changes:
        _table(changes, ["at", "change", "digest", "tag", "source", "detail"])
    else:
        click.echo("(nothing)")


def _tag_query(tag: str) -> ImageQuery:
    query = parse_image(tag, "TAG")
    if query.tag is None:
        fail(f"TAG {tag!r}: give a tag (or registry/repository:tag), not a digest")
    return query


@click.command("history", cls=Command)
@click.argument("tag", required=False)
@click.option("--node", help="Show a node's images and their history instead of a tag's.")
@click.option("--at", "at_text", metavar="TIME", help="ISO 8601 time (UTC when no zone).")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="Node history: newest events shown.")  # fmt: skip
@database_url_option
@json_option
def history_command(
    tag: str | None,
    node: str | None,
    at_text: str | None,
    limit: int,
    database_url: str | None,
    as_json: bool,
) -> None:
    """The history of TAG (discovered, resolved, moved, removed) or, with --node, the
    images a node held and when they appeared and disappeared.

    --at shows the digest TAG named at that time, or the images NODE held then (default:
    now) with its history up to then. TAG may be registry/repository:tag.
    """
    if (tag is None) == (node is None):
        fail("give either a TAG or --node NODE")
    at = parse_time(at_text, "--at") if at_text is not None else None
    ops = factory.Operations(database_url)
    if node is not None:
        moment = at or parse_time(None)
        _show_node(asyncio.run(ops.node_history(node, moment, limit)), limit, as_json)
        return
    assert tag is not None
    query = _tag_query(tag)
    if at is None:
        _show_changes(str(query), asyncio.run(ops.tag_history(query)), as_json)
    else:
        _show_tag_at(str(query), at, asyncio.run(ops.tag_at(query, at)), as_json)
