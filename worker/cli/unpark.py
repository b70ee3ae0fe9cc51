"""``imageledger unpark``: let parked (image, node) prepulls be tried again."""

from __future__ import annotations

import asyncio
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
    print_json,
    print_rows,
)
from worker.domain.unpark import DEFAULT_REASON

__all__ = ["unpark_command"]


@click.command("unpark", cls=Command)
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
    report = asyncio.run(factory.Operations(database_url).unpark(query, node, reason))
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
