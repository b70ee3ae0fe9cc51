"""``imageledger refresh``: request a refresh of the workers, or run one here."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import click

from worker import converter as wire
from worker import factory
from worker.cli.common import (
    PREFIX_ENV,
    Command,
    CommandError,
    amqp_url_option,
    config_option,
    database_url_option,
    prefix_option,
    print_json,
    progress_reporter,
)
from worker.config import Config
from worker.domain.errors import EXIT_REGISTRY
from worker.domain.events import RefreshFailed
from worker.services.refresh import RefreshReport

__all__ = ["refresh_command"]


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


async def _refresh_now(
    config: Config, url: str | None, progress: Callable[[int, int], None]
) -> RefreshReport:
    async with factory.application(config, url) as app:
        return await app.refresh_now(progress=progress)


def _request(amqp_url: str | None, prefix: str, as_json: bool) -> None:
    """Publish a refresh request; warn (on stderr) when no worker consumes its queue."""
    sent = asyncio.run(factory.Operations(amqp_url=amqp_url, prefix=prefix).request_refresh())
    if as_json:
        print_json(
            {"message_id": sent.message_id, "exchange": sent.exchange, "queue": sent.queue,
             "consumers": sent.consumers}
        )  # fmt: skip
    else:
        click.echo(f"refresh requested on exchange {sent.exchange} (message id {sent.message_id})")
    if sent.consumers == 0:
        click.echo(
            f"imageledger: warning: no worker consumes queue {sent.queue}: the request waits "
            f"there until one starts with --prefix {prefix}. Is {PREFIX_ENV} (or --prefix) "
            "the workers' prefix?",
            err=True,
        )


@click.command("refresh", cls=Command)
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
    refresh.request message is published for the workers on the exchange named by --prefix
    (IMAGELEDGER_BROKER_PREFIX), with a warning when no worker consumes its queue.
    """
    if not in_process:
        _request(amqp_url, prefix, as_json)
        return
    config = factory.load(config_path)
    progress = progress_reporter("refresh", "digests", as_json=as_json)
    report = asyncio.run(_refresh_now(config, database_url, progress))
    if as_json:
        click.echo(json.dumps(wire.converter.unstructure(report.summary), indent=2))
    else:
        click.echo("\n".join(_summary_lines(report)))
    if not report.succeeded:
        raise CommandError(
            "the registry could not be listed; the last known state stays", EXIT_REGISTRY
        )
