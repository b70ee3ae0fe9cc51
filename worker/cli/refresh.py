"""``imageledger refresh`` and ``imageledger run``: the worker and its refreshes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click
import structlog

from worker import converter as wire
from worker import factory
from worker.adapters.ledger import LedgerError, safe_url
from worker.adapters.ledger import database_url as resolve_database_url
from worker.cli.common import (
    CommandError,
    amqp_url_option,
    config_option,
    database_url_option,
    load_config,
    prefix_option,
    print_json,
    progress_reporter,
)
from worker.config import Config
from worker.domain.errors import ImageLedgerError
from worker.domain.events import RefreshFailed
from worker.logs import configure_logging
from worker.services.refresh import RefreshReport

__all__ = ["refresh_command", "run_command"]

log = structlog.get_logger(__name__)


def _summary_lines(report: RefreshReport) -> list[str]:
    summary = report.summary
    where = f"{report.repository}"
    if isinstance(summary, RefreshFailed):
        return [f"refresh of {where} FAILED: {summary.reason}"]
    requests = sum(r.count for r in summary.requests)
    lines = [
        f"refresh of {where} completed in {summary.duration_seconds:.2f} s",
        f"  tags: {summary.tags_total}  discovered: {summary.discovered}  "
        f"resolved: {summary.resolved}  moved: {summary.moved}  removed: {summary.removed}",
        f"  registry requests: {requests}  retries: {summary.retries}  "
        f"events appended: {report.appended}",
    ]
    if summary.flagged_tags:
        shown = ", ".join(summary.flagged_tags[:10])
        lines.append(f"  digests not verified (last known kept): {shown}")
    return lines


@click.command("refresh")
@click.option("--now", "in_process", is_flag=True, help="Refresh in this process and wait.")
@config_option
@database_url_option
@amqp_url_option
@prefix_option
@click.option(
    "--json", "as_json", is_flag=True, help="Print the summary event (or the message id) as JSON."
)
def refresh_command(
    in_process: bool,
    config_path: Path | None,
    database_url: str | None,
    amqp_url: str | None,
    prefix: str,
    as_json: bool,
) -> None:
    """Refresh the registry's tags and digests.

    With --now the refresh runs here and its summary is printed; without it a
    refresh.request message is published for the workers.
    """
    if not in_process:
        message_id = asyncio.run(_publish_refresh(amqp_url, prefix))
        if as_json:
            print_json({"message_id": message_id})
        else:
            click.echo(f"refresh requested (message id {message_id})")
        return
    config = load_config(config_path)
    report = asyncio.run(
        _refresh_now(config, database_url, progress_reporter("refresh", "digests"))
    )
    if as_json:
        click.echo(json.dumps(wire.converter.unstructure(report.summary), indent=2))
    else:
        click.echo("\n".join(_summary_lines(report)))
    if not report.succeeded:
        raise CommandError("the registry could not be listed; the last known state stays")


async def _refresh_now(
    config: Config, url: str | None, progress: Callable[[int, int], None]
) -> RefreshReport:
    try:
        async with factory.application(config, url) as app:
            return await app.refresh_now(progress=progress)
    except LedgerError as exc:
        where = safe_url(resolve_database_url(url))
        raise CommandError(str(exc) if where in str(exc) else f"{exc} ({where})") from exc
    except ImageLedgerError as exc:
        raise CommandError(str(exc)) from exc


async def _publish_refresh(url: str | None, prefix: str) -> str:
    from worker.adapters.broker import (
        Broker,
        BrokerError,
        BrokerSettings,
        BrokerUnavailableError,
        amqp_url,
        safe_amqp_url,
    )
    from worker.domain.messages import RefreshRequested

    message_id = f"refresh-{uuid.uuid4()}"
    settings = BrokerSettings(url=amqp_url(url), prefix=prefix, connect_attempts=1)
    broker = Broker(settings)
    try:
        try:
            await broker.connect()
        except BrokerUnavailableError as exc:
            raise CommandError(
                f"cannot reach RabbitMQ at {safe_amqp_url(settings.url)}: "
                f"{exc.__cause__ or exc}; the refresh was not requested"
            ) from exc
        await broker.publish_message(
            RefreshRequested(reason="imageledger refresh", requested_at=factory.utcnow()),
            message_id=message_id,
        )
    except BrokerError as exc:
        raise CommandError(f"cannot publish the refresh request: {exc}") from exc
    finally:
        await broker.close()
    return message_id


@click.command("run")
@config_option
@database_url_option
@amqp_url_option
@prefix_option
@click.option("--host", envvar="IMAGELEDGER_HOST", default="0.0.0.0", show_default=True)
@click.option("--port", envvar="IMAGELEDGER_PORT", type=int, default=8080, show_default=True)
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
    """Run a worker: consume, fold, plan prepulls, publish; serve /healthz and /metrics.

    SIGTERM (or Ctrl-C) finishes the batches in hand, commits, acknowledges and exits 0.
    """
    from worker.adapters.broker import amqp_url as resolve_amqp_url
    from worker.consumer import Worker
    from worker.web import serve

    configure_logging("info")
    config = load_config(config_path)
    settings = factory.broker_settings(config, resolve_amqp_url(amqp_url), prefix)

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with (
            factory.runtime(config, settings, database_url) as runtime,
            serve(runtime, host, port),
        ):
            if await _connect_unless_stopped(runtime.broker.connect, stop):
                await Worker(runtime, schedule_refreshes=not no_schedule).run(stop)

    try:
        asyncio.run(_run())
    except (ImageLedgerError, LedgerError) as exc:
        raise CommandError(str(exc)) from exc


async def _connect_unless_stopped(
    connect: Callable[[], Coroutine[Any, Any, None]], stop: asyncio.Event
) -> bool:
    """Connect to RabbitMQ (retrying with back-off, a log line per retry) unless SIGTERM
    comes first; False when stopped before the broker was reached."""
    connecting = asyncio.create_task(connect())
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if connecting in done:
        connecting.result()
        return True
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await connecting
    log.info("worker stopped before RabbitMQ was reached")
    return False
