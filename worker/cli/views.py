"""``imageledger menu`` and ``imageledger status``: the dashboard views as tables."""

from __future__ import annotations

import click

from worker.adapters.ledger import dashboard
from worker.cli.common import database_url_option, json_option, print_rows, run_on_database

__all__ = ["menu_command", "status_command"]


@click.command("menu")
@database_url_option
@json_option
def menu_command(database_url: str | None, as_json: bool) -> None:
    """The spawner menu as the views hold it: radio entries, then the dropdown."""
    rows = run_on_database(database_url, dashboard.menu_rows)
    print_rows(rows, ["section", "display_name", "prepulled", "reference"], as_json)


@click.command("status")
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
    if by_node:
        rows = run_on_database(database_url, dashboard.node_status_rows)
        print_rows(rows, ["node", "eligible", "missing_count", "missing", "comment"], as_json)
        return
    rows = run_on_database(database_url, dashboard.prepull_status_rows)
    columns = ["display_name", "prepulled", "present_nodes", "missing_nodes", "digest"]
    print_rows(rows, columns, as_json)
