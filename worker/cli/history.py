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
from worker.services.history import NodeHistory, TagAt, TagHistory

__all__ = ["history_command"]


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


def _with_repository(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "repository": f"{r['registry']}/{r['repository']}",
             "digest": r["digest"] or "(not resolved)"} for r in rows]  # fmt: skip


def _image(history: TagHistory, digest: str | None) -> str:
    """A digest as the tag it goes by now and its short form: ``w_2077_43 (sha256:…)``."""
    if digest is None:
        return "(not resolved)"
    tag = history.tag_of(digest)
    return f"{tag} ({short_digest(digest)})" if tag else short_digest(digest)


def _change_row(change: TagChange, history: TagHistory) -> dict[str, Any]:
    """One change as a table row: the image it came from and the one it went to."""
    before = {"resolved": "(not resolved)", "discovered": ""}
    source = before.get(change.change)
    if source is None:  # moved: the previous digest; removed: the last one
        source = _image(history, change.previous_digest or change.digest)
    target = "" if change.change == "removed" else _image(history, change.digest)
    where = f"{change.registry}/{change.repository}"
    return {"at": change.at, "change": change.change, "from": source, "to": target,
            "repository": where}  # fmt: skip


def _show_changes(tag: str, history: TagHistory, as_json: bool) -> None:
    if as_json:
        rows = [
            {**asdict(c), "digest_tag": history.tag_of(c.digest),
             "previous_digest_tag": history.tag_of(c.previous_digest)}
            for c in history.changes
        ]  # fmt: skip
        print_json({"tag": tag, "changes": rows})
        return
    click.echo(f"history of tag {tag} (images named by the tag they go by now):")
    rows = [_change_row(c, history) for c in history.changes]
    print_rows(rows, ["at", "change", "from", "to", "repository"], False)


def _show_tag_at(tag: str, at: datetime, result: TagAt, as_json: bool) -> None:
    if as_json:
        print_json({"tag": tag, "at": at, "digests": result.digests})
        return
    if not result.digests:
        click.echo(f"tag {tag} was in no repository at {_when(at)}"
                   f" (first seen at {_when(result.first_seen_at)})")  # fmt: skip
        return
    click.echo(f"tag {tag} at {_when(at)}:")
    columns = {"repository": "repository", "digest": "digest", "valid_from": "from",
               "valid_until": "until"}  # fmt: skip
    print_rows(_with_repository(result.digests), columns, False)


def _show_node(result: NodeHistory, limit: int, as_json: bool) -> None:
    if as_json:
        print_json(asdict(result))
        return
    images, changes = result.images, result.changes
    click.echo(f"node {result.node} held {len(images)} image(s) at {_when(result.at)}:")
    if images:
        columns = {"digest": "digest", "tag": "tag", "display_name": "name", "source": "source",
                   "observed_at": "observed at"}  # fmt: skip
        print_rows(images, columns, False)
    click.echo("")
    click.echo(f"history up to then (newest {limit} at most):")
    print_rows(changes, ["at", "change", "digest", "tag", "source", "detail"], False)


def _tag_query(tag: str) -> ImageQuery:
    query = parse_image(tag, "TAG")
    if query.tag is None:
        fail(f"TAG {tag!r}: give a tag (or registry/repository:tag), not a digest")
    return query


@click.command("history", cls=Command)
@click.argument("tag", required=False)
@click.option("--node", help="Show a node's images and their history instead of a tag's.")
@click.option(
    "--at",
    "at_text",
    metavar="TIME",
    help="ISO 8601 time (UTC when no zone), or a time ago: 2h, 3d, 1h30m.",
)
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
    now) with its history up to then; it takes an ISO 8601 time or a time ago (2h, 3d).
    TAG may be registry/repository:tag. A move names the images it came from and went to
    by the tag each goes by now.
    """
    if (tag is None) == (node is None):
        fail("give either a TAG or --node NODE")
    at = parse_time(at_text, "--at", relative=True) if at_text is not None else None
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
