"""The ``imageledger`` command: the group, its entry point, and every subcommand attached."""

from __future__ import annotations

import logging
import sys
from importlib import metadata

import click

from worker.cli.check import check_command
from worker.cli.common import CommandError, Group
from worker.cli.db import migrate_command, rebuild_command
from worker.cli.deadletters import dead_letters_group
from worker.cli.evaluate import evaluate_command
from worker.cli.explain import explain_command
from worker.cli.history import history_command
from worker.cli.kube import kube_command
from worker.cli.prune import prune_command
from worker.cli.refresh import refresh_command
from worker.cli.resolve import resolve_command
from worker.cli.run import run_command
from worker.cli.unpark import unpark_command
from worker.cli.views import menu_command, status_command
from worker.domain.errors import ImageLedgerError
from worker.logs import configure_logging

__all__ = ["main", "run"]


def _version() -> str:
    try:
        return metadata.version("imageledger")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _show_version(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"imageledger {_version()}")
        ctx.exit()


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and exit.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """imageledger: the image ledger of a notebook platform."""
    ctx.obj = {"debug": debug}
    try:
        configure_logging("debug" if debug else "warning")
    except ImageLedgerError as exc:
        raise CommandError(str(exc), exc.exit_code) from exc
    if not debug:  # our one-line error (or the worker's own log) already says it
        logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)


def run() -> None:
    """Entry point with tracebacks hidden unless ``--debug``."""
    try:
        main(standalone_mode=False)
    except click.UsageError as exc:  # a bad option or argument: one line, exit 2
        click.echo(f"imageledger: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        if "--debug" in sys.argv:
            raise
        click.echo(f"imageledger: error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)


for _command in (
    evaluate_command,
    migrate_command,
    rebuild_command,
    refresh_command,
    run_command,
    kube_command,
    menu_command,
    status_command,
    resolve_command,
    dead_letters_group,
    prune_command,
    history_command,
    explain_command,
    unpark_command,
    check_command,
):
    main.add_command(_command)
