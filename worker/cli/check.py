"""``imageledger check``: is everything in place for a worker to run and converge?"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from attrs import asdict

from worker import factory
from worker.cli.common import (
    Command,
    CommandError,
    amqp_url_option,
    config_option,
    database_url_option,
    json_option,
    prefix_option,
    print_json,
)
from worker.logs import configure_logging

__all__ = ["check_command"]


def _line(check: factory.Check) -> str:
    verdict = "ok" if check.ok else "FAIL"
    fix = f" -> {check.fix}" if check.fix and not check.ok else ""
    return f"{verdict:<4}  {check.name:<8}  {check.found}{fix}"


@click.command("check", cls=Command)
@click.pass_context
@config_option
@database_url_option
@amqp_url_option
@prefix_option
@json_option
def check_command(
    ctx: click.Context,
    config_path: Path | None,
    database_url: str | None,
    amqp_url: str | None,
    prefix: str,
    as_json: bool,
) -> None:
    """Check the configuration, the database, RabbitMQ, its workers and the registry.

    One line per check: ok, or FAIL with what was found and, after ->, what to do. The
    database must exist (createdb) and be migrated to the code's head revision; the broker
    must hold the exchange and queues of --prefix (IMAGELEDGER_BROKER_PREFIX) with a worker
    consuming each; the registry must list the configured repository with the configured
    credentials. Exit status 0 only when every check passes, else 1.
    """
    if not (ctx.obj or {}).get("debug"):
        configure_logging("error")  # the verdicts say it; the retries' warnings would not
    checks = asyncio.run(factory.run_checks(config_path, database_url, amqp_url, prefix))
    if as_json:
        print_json([asdict(check) for check in checks])
    else:
        for check in checks:
            click.echo(_line(check))
    failed = [check.name for check in checks if not check.ok]
    if failed:
        raise CommandError(f"{len(failed)} check(s) failed: {', '.join(failed)}")
