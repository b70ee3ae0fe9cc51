"""``imageledger history``: a tag's digests over time, or the images a node held, from the log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from attrs import asdict
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger import HistoryStore
from worker.cli.common import (
    UnknownError,
    database_url_option,
    fail,
    json_option,
    parse_time,
    print_json,
    run_on_database,
)
from worker.cli.lookup import parse_image, short_digest
from worker.domain.explain import ImageQuery
from worker.domain.history import node_changes, tag_changes

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
    cells = [[_cell(c, r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    for line in [columns, *cells]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


def _query(tag: str) -> ImageQuery:
    query = parse_image(tag, "TAG")
    if query.tag is None:
        fail(f"TAG {tag!r}: give a tag (or registry/repository:tag), not a digest")
    return query


async def _tag_history(engine: AsyncEngine, query: ImageQuery, at: datetime | None) -> Any:
    store = HistoryStore(engine)
    assert query.tag is not None
    stretches = await store.tag_stretches(query.tag, query.registry, query.repository)
    if not stretches:
        raise UnknownError(f"unknown tag {query}: no repository ever listed it")
    if at is None:
        return [asdict(c) for c in tag_changes(stretches)]
    rows = await store.tag_at(query.tag, at, query.registry, query.repository)
    return {"first_seen_at": min(s.valid_from for s in stretches), "digests": rows}


async def _node_history(engine: AsyncEngine, node: str, at: datetime, limit: int) -> Any:
    store = HistoryStore(engine)
    if await store.node(node) is None:
        raise UnknownError(f"unknown node {node}: it never reported an inventory")
    images = await store.node_images_at(node, at)
    changes = [asdict(c) for c in node_changes(await store.node_events(node, at, limit))][-limit:]
    digests = [i["digest"] for i in images] + [c["digest"] for c in changes if c["digest"]]
    names = await store.image_names(digests)
    for row in [*images, *changes]:
        name = names.get(row.get("digest") or "", {})
        row["tag"] = name.get("tag")
        row["display_name"] = name.get("display_name")
    images.sort(key=lambda i: (i["tag"] is None, i["tag"] or "", i["digest"]))
    return {"node": node, "at": at, "images": images, "changes": changes}


def _show_tag(tag: str, at: datetime | None, result: Any, as_json: bool) -> None:
    if at is None:
        if as_json:
            print_json({"tag": tag, "changes": result})
            return
        rows = [{**r, "repository": f"{r['registry']}/{r['repository']}",
                 "digest": r["digest"] or "(not resolved)"} for r in result]  # fmt: skip
        click.echo(f"history of tag {tag}:")
        _table(rows, ["at", "change", "digest", "previous_digest", "repository"])
        return
    if as_json:
        print_json({"tag": tag, "at": at, "digests": result["digests"]})
        return
    if not result["digests"]:
        click.echo(f"tag {tag} was in no repository at {_when(at)}"
                   f" (first seen at {_when(result['first_seen_at'])})")  # fmt: skip
        return
    click.echo(f"tag {tag} at {_when(at)}:")
    rows = [{**r, "repository": f"{r['registry']}/{r['repository']}",
             "digest": r["digest"] or "(not resolved)"} for r in result["digests"]]  # fmt: skip
    _table(rows, ["repository", "digest", "valid_from", "valid_until"])


def _show_node(result: dict[str, Any], limit: int, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    images, changes = result["images"], result["changes"]
    click.echo(f"node {result['node']} held {len(images)} image(s) at {_when(result['at'])}:")
    if images:
        _table(images, ["digest", "tag", "display_name", "source", "observed_at"])
    click.echo("")
    click.echo(f"history up to then (newest {limit} at most):")
    if changes:
        _table(changes, ["at", "change", "digest", "tag", "source", "detail"])
    else:
        click.echo("(nothing)")


@click.command("history")
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
    if node is not None:
        moment = at or parse_time(None)
        result = run_on_database(database_url, lambda e: _node_history(e, node, moment, limit))
        _show_node(result, limit, as_json)
        return
    assert tag is not None
    query = _query(tag)
    result = run_on_database(database_url, lambda e: _tag_history(e, query, at))
    _show_tag(str(query), at, result, as_json)
