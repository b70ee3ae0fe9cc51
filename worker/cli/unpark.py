"""``imageledger unpark``: let parked (image, node) prepulls be tried again."""

from __future__ import annotations

from typing import Any

import click
from attrs import asdict
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger import EventLog, ExplainStore, UnparkStore
from worker.cli.common import (
    UnknownError,
    database_url_option,
    fail,
    json_option,
    parse_time,
    print_json,
    print_rows,
    run_on_database,
)
from worker.cli.lookup import find_image, parse_image
from worker.domain.explain import ImageQuery
from worker.domain.unpark import DEFAULT_REASON
from worker.services.unpark import UnparkReport, unpark

__all__ = ["unpark_command"]


async def _digests(store: ExplainStore, query: ImageQuery) -> list[str]:
    """The digest the image names now (a digest names itself, if the ledger knows it)."""
    if query.tag is None and query.digest is not None:
        if await store.find_tags(query) or await store.digest_known(query.digest):
            return [query.digest]
        raise UnknownError(f"unknown image {query}: no tag or node knows that digest")
    image = await find_image(store, query)
    return [image.digest] if image.digest is not None else []


async def _unpark(
    engine: AsyncEngine, query: ImageQuery, node: str | None, reason: str
) -> UnparkReport:
    store = ExplainStore(engine)
    if node is not None and await store.node(node) is None:
        raise UnknownError(f"unknown node {node}: it never reported an inventory")
    digests = await _digests(store, query)
    return await unpark(UnparkStore(EventLog(engine)), digests, node, reason, parse_time(None))


@click.command("unpark")
@click.argument("image")
@click.argument("node", required=False)
@click.option("--reason", default=DEFAULT_REASON, show_default=True,
              help="Why, recorded in each PrepullUnparked event.")  # fmt: skip
@database_url_option
@json_option
def unpark_command(
    image: str, node: str | None, reason: str, database_url: str | None, as_json: bool
) -> None:
    """Let the parked prepulls of IMAGE (on NODE, or on every node) be tried again.

    IMAGE is a tag, registry/repository:tag or a digest; a tag stands for the digest it
    names now. Appends one PrepullUnparked event per parked pair; the next plan requests
    those pairs again. Running it again adds nothing until a pair is parked again.
    """
    if not reason.strip():
        fail("--reason must not be empty")
    query = parse_image(image)
    report = run_on_database(database_url, lambda e: _unpark(e, query, node, reason))
    where = f" on {node}" if node else ""
    rows: list[dict[str, Any]] = [asdict(p) for p in report.pairs]
    if as_json:
        print_json({"image": str(query), "node": node, "reason": reason, "unparked": rows})
        return
    if not rows:
        click.echo(f"nothing parked for {query}{where}")
        return
    click.echo(f"unparked {len(rows)} prepull(s) of {query}{where} ({reason}):")
    print_rows(rows, ["node", "digest", "tag", "failures", "reason", "parked_at"], False)
