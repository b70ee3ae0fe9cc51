"""``imageledger menu`` and ``imageledger status``: the dashboard views as tables."""

from __future__ import annotations

import asyncio

import click

from worker import factory
from worker.cli.common import Command, database_url_option, json_option, print_rows

__all__ = ["menu_command", "status_command"]


@click.command("menu", cls=Command)
@database_url_option
@json_option
def menu_command(database_url: str | None, as_json: bool) -> None:
    """The spawner menu as the views hold it: radio entries, then the dropdown."""
    rows = asyncio.run(factory.Operations(database_url).menu())
    print_rows(rows, ["section", "display_name", "prepulled", "reference"], as_json)


@click.command("status", cls=Command)
@database_url_option
@click.option(
    "--nodes", "by_node", is_flag=True, help="Per node: eligibility and the images it lacks."
)
@json_option
def status_command(database_url: str | None, by_node: bool, as_json: bool) -> None:
    """Prepull status per target image: eligible nodes that have it and that lack it.

    With --nodes, per node: whether it is eligible (and why not) and which target images it
    still lacks, each with its prepull state (in_flight, failed, parked; pending unmarked).
    """
    ops = factory.Operations(database_url)
    if by_node:
        rows = asyncio.run(ops.node_status())
        print_rows(rows, ["node", "eligible", "missing_count", "missing", "comment"], as_json)
        return
    rows = asyncio.run(ops.prepull_status())
    columns = ["display_name", "prepulled", "present_nodes", "missing_nodes", "digest"]
    print_rows(rows, columns, as_json)
