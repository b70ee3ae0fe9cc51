"""The ``imageledger`` command: the group, its entry point, and every subcommand attached."""

from __future__ import annotations

import sys

import click

from worker.cli.db import migrate_command, rebuild_command
from worker.cli.evaluate import evaluate_command
from worker.cli.prune import prune_command
from worker.cli.refresh import refresh_command, run_command
from worker.cli.views import menu_command, status_command
from worker.logs import configure_logging

__all__ = ["main", "run"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """imageledger: the image ledger of a notebook platform."""
    ctx.obj = {"debug": debug}
    configure_logging("debug" if debug else "warning")


def run() -> None:
    """Entry point with tracebacks hidden unless ``--debug``."""
    try:
        main(standalone_mode=False)
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
    menu_command,
    status_command,
    prune_command,
):
    main.add_command(_command)
