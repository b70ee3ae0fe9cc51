"""``imageledger run``: a worker process, its consumers and its HTTP server, until SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from worker import factory
from worker.cli.common import (
    Command,
    amqp_url_option,
    config_option,
    database_url_option,
    prefix_option,
)
from worker.config import Config
from worker.consumer import Worker
from worker.logs import configure_logging, log_start
from worker.web import serve

__all__ = ["run_command"]


async def _serve(
    config: Config, amqp_url: str | None, prefix: str, url: str | None, address: tuple[str, int],
    schedule: bool,
) -> None:  # fmt: skip
    """The worker and its HTTP server until SIGTERM or SIGINT."""
    settings = factory.broker_settings(config, amqp_url, prefix)
    token = factory.http_token()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with (
        factory.runtime(config, settings, url) as runtime,
        serve(runtime, *address, token=token),
    ):
        await Worker(runtime, schedule_refreshes=schedule).run(stop)


@click.command("run", cls=Command)
@config_option
@database_url_option
@amqp_url_option
@prefix_option
@click.option("--host", envvar="IMAGELEDGER_HOST", default="0.0.0.0", show_default=True)
@click.option(
    "--port",
    envvar="IMAGELEDGER_PORT",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
)
@click.option("--no-schedule", is_flag=True, help="Do not schedule refreshes (messages only).")
def run_command(
    config_path: Path | None,
    database_url: str | None,
    amqp_url: str | None,
    prefix: str,
    host: str,
    port: int,
    no_schedule: bool,
) -> None:
    """Run a worker: consume, fold, plan prepulls, publish; serve the probes (/livez,
    /readyz), /metrics and the spawner API (behind IMAGELEDGER_HTTP_TOKEN when set).

    SIGTERM (or Ctrl-C) finishes the batches in hand, commits, acknowledges and exits 0.
    """
    configure_logging("info")
    path = factory.config_path(config_path)
    config = factory.load(path)
    fields = factory.start_fields(path, config, database=database_url, amqp=amqp_url, prefix=prefix)
    log_start("run", {**fields, "http": f"{host}:{port}"})
    asyncio.run(_serve(config, amqp_url, prefix, database_url, (host, port), not no_schedule))
