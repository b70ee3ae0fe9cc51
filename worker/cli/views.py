"""``imageledger menu`` and ``imageledger status``: the dashboard views as tables."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from worker.adapters import dashboard
from worker.adapters.database import LedgerError, make_engine
from worker.adapters.database import database_url as resolve_database_url
from worker.cli.common import CommandError, database_url_option, print_rows

__all__ = ["menu_command", "status_command"]


async def _read_view(url: str | None, which: str) -> list[dict[str, Any]]:
    engine = make_engine(resolve_database_url(url))
    try:
        reader = dashboard.menu_rows if which == "menu" else dashboard.prepull_status_rows
        return await reader(engine)
    except LedgerError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        await engine.dispose()


@click.command("menu")
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def menu_command(database_url: str | None, as_json: bool) -> None:
    """The spawner menu as the views hold it: radio entries, then the dropdown."""
    rows = asyncio.run(_read_view(database_url, "menu"))
    print_rows(rows, ["section", "display_name", "prepulled", "reference"], as_json)


@click.command("status")
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def status_command(database_url: str | None, as_json: bool) -> None:
    """Prepull status per target image: eligible nodes that have it and that lack it."""
    rows = asyncio.run(_read_view(database_url, "status"))
    columns = ["display_name", "prepulled", "present_nodes", "missing_nodes", "digest"]
    print_rows(rows, columns, as_json)
