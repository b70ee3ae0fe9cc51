"""``imageledger menu`` and ``imageledger status``: the dashboard views as tables."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from worker import factory
from worker.cli.common import Command, database_url_option, json_option, print_rows

__all__ = ["menu_command", "status_command"]

MENU_COLUMNS = {"section": "section", "display_name": "name", "prepulled": "prepulled",
                "reference": "reference"}  # fmt: skip
STATUS_COLUMNS = {"tag": "tag", "display_name": "name", "digest": "digest",
                  "prepulled": "prepulled", "present_nodes": "present",
                  "missing_nodes": "missing"}  # fmt: skip
NODE_COLUMNS = {"node": "node", "eligible": "eligible", "missing_count": "missing",
                "missing": "missing images", "reason": "reason"}  # fmt: skip


@click.command("menu", cls=Command)
@database_url_option
@json_option
def menu_command(database_url: str | None, as_json: bool) -> None:
    """The spawner menu as the views hold it: radio entries, then the dropdown."""
    rows = asyncio.run(factory.Operations(database_url).menu())
    print_rows(rows, MENU_COLUMNS, as_json)


def _labelled(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its tag labelled when it is the recommended image."""
    return {**row, "tag": f"{row['tag']} (recommended)"} if row.get("recommended") else row


@click.command("status", cls=Command)
@database_url_option
@click.option(
    "--nodes", "by_node", is_flag=True, help="Per node: eligibility and the images it lacks."
)
@json_option
def status_command(database_url: str | None, by_node: bool, as_json: bool) -> None:
    """Prepull status per target image: how many eligible nodes have it and lack it; the
    recommended image is labelled.

    With --nodes, per node: whether it is eligible (the reason when not) and which target
    images it still lacks, each with its prepull state (in_flight, failed, parked; pending
    unmarked).
    """
    ops = factory.Operations(database_url)
    if by_node:
        print_rows(asyncio.run(ops.node_status()), NODE_COLUMNS, as_json)
        return
    rows = asyncio.run(ops.prepull_status())
    print_rows(rows if as_json else [_labelled(r) for r in rows], STATUS_COLUMNS, as_json)
