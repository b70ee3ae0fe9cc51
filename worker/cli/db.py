"""``imageledger migrate`` and ``imageledger rebuild``: the schema and the projections."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from worker.adapters import migrate
from worker.adapters.database import LedgerError, make_engine, safe_url
from worker.adapters.rebuild import Progress, rebuild
from worker.cli.common import CommandError, database_url_option

__all__ = ["migrate_command", "progress_reporter", "rebuild_command"]

T = TypeVar("T")


def _run(url: str, action: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``action(engine)``; a LedgerError becomes one line on stderr and exit status 1."""

    async def main() -> T:
        engine = make_engine(url)
        try:
            return await action(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except LedgerError as exc:
        where = safe_url(url)
        raise CommandError(str(exc) if where in str(exc) else f"{exc} ({where})") from exc


@click.command("migrate")
@database_url_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def migrate_command(database_url: str, revision: str) -> None:
    """Create or upgrade the database schema (ledger tables, dashboard views, reader role)."""

    async def action(engine: Any) -> str | None:
        await migrate.upgrade(engine, revision)
        return await migrate.current_revision(engine)

    current = _run(database_url, action)
    click.echo(f"database {safe_url(database_url)} is at revision {current}")


def progress_reporter(tty: bool | None = None, out: Any = None) -> Progress:
    """A progress callback: a redrawn bar on a terminal, a line per 10% otherwise."""
    stream = out or sys.stderr
    interactive = stream.isatty() if tty is None else tty
    started = time.monotonic()
    shown = {"tenth": -1}

    def report(done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        rate = done / max(time.monotonic() - started, 1e-9)
        if interactive:
            filled = int(fraction * 30)
            bar = "#" * filled + "-" * (30 - filled)
            end = "\n" if done >= total else ""
            click.echo(f"\rrebuild [{bar}] {done:,}/{total:,} events {rate:,.0f}/s", nl=False,
                       file=stream)  # fmt: skip
            click.echo(end, nl=False, file=stream)
            return
        tenth = int(fraction * 10)
        if tenth > shown["tenth"]:
            shown["tenth"] = tenth
            click.echo(f"rebuild: {done:,}/{total:,} events ({fraction:.0%}), {rate:,.0f}/s",
                       file=stream)  # fmt: skip

    return report


@click.command("rebuild")
@database_url_option
@click.option("--chunk", default=100_000, show_default=True, help="Positions folded per step.")
def rebuild_command(database_url: str, chunk: int) -> None:
    """Empty the projections and fold the whole event log again, in position order."""
    report = _run(database_url, lambda e: rebuild(e, chunk=chunk, progress=progress_reporter()))
    click.echo(
        f"rebuilt the projections from {report.events:,} events in {report.seconds:.1f} s "
        f"({report.events_per_second:,.0f} events/s)"
    )
