"""The ``imageledger`` command."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml

from worker import converter as wire
from worker import factory
from worker.adapters import dashboard
from worker.adapters.database import LedgerError, make_engine
from worker.adapters.database import database_url as resolve_database_url
from worker.cli_db import database_url_option, migrate_command, rebuild_command
from worker.config import Config, ConfigError, load_config
from worker.converter import ValidationError
from worker.domain.errors import ImageLedgerError
from worker.domain.events import RefreshFailed
from worker.domain.nodes import Node
from worker.logs import configure_logging
from worker.services.evaluate import evaluate
from worker.services.refresh import RefreshReport

__all__ = ["main"]

EXIT_BAD_INPUT = 2


class CommandError(click.ClickException):
    """A one-line error; ``exit_code`` says what kind."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"imageledger: error: {self.format_message()}", err=True)


class BadInputError(CommandError):
    """A bad file, option or reference given by the operator."""

    exit_code = EXIT_BAD_INPUT


def _fail(message: str) -> NoReturn:
    raise BadInputError(message)


config_option = click.option(
    "--config", "config_path", type=Path, help="Config YAML (or IMAGELEDGER_CONFIG)."
)
amqp_url_option = click.option("--amqp-url", envvar="IMAGELEDGER_AMQP_URL", help="RabbitMQ URL.")
prefix_option = click.option(
    "--prefix",
    envvar="IMAGELEDGER_BROKER_PREFIX",
    default="imageledger",
    show_default=True,
    help="Exchange and queue name prefix of the workers.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """imageledger: the image ledger of a notebook platform."""
    ctx.obj = {"debug": debug}
    configure_logging("debug" if debug else "warning")


def _read_data(path: Path, what: str) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        _fail(f"{what} file {path}: cannot read: {exc.strerror or exc}")
    try:
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        _fail(
            f"{what} file {path}: not valid {'YAML' if path.suffix != '.json' else 'JSON'}: "
            + str(exc).replace("\n", " ")
        )


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(tz=UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"--now {value!r}: not an ISO 8601 timestamp")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _guard(load: Callable[[], Any], path: Path) -> Any:
    try:
        return load()
    except (ValidationError, ConfigError) as exc:
        message = str(exc)
        _fail(message if str(path) in message else f"{path}: {message}")


@main.command("evaluate")
@click.option("--config", "config_path", type=Path, required=True, help="Controller config YAML.")
@click.option(
    "--tags",
    "tags_path",
    type=Path,
    required=True,
    help="{tag: digest-or-null} JSON, or an Artifact Registry listing.",
)
@click.option(
    "--nodes", "nodes_path", type=Path, help="Nodes JSON: name -> images, labels, taints."
)
@click.option("--now", help="The time for age filters (ISO 8601); default: now.")
@click.option(
    "--digests",
    type=click.Choice(["all", "prepull-set"]),
    default="all",
    show_default=True,
    help="Which digests are known: all, or the prepull candidates'.",
)
@click.option(
    "--output",
    type=click.Choice(["spawner-images", "menu", "prepuller-status", "tags"]),
    default="menu",
    show_default=True,
    help="What to print.",
)
def evaluate_command(
    config_path: Path,
    tags_path: Path,
    nodes_path: Path | None,
    now: str | None,
    digests: str,
    output: str,
) -> None:
    """Compute offline what the platform would show (a policy dry-run).

    Prints JSON in the reference implementation's shapes.
    """
    config = _guard(lambda: load_config(config_path), config_path)
    repository = config.images.repository
    tag_data = _read_data(tags_path, "tags")
    entries = _guard(lambda: wire.tag_entries(tag_data, repository, str(tags_path)), tags_path)
    nodes: list[Node] = []
    if nodes_path is not None:
        node_data = _read_data(nodes_path, "nodes")
        nodes = _guard(lambda: wire.nodes_from_file(node_data, str(nodes_path)), nodes_path)
    moment = _parse_now(now)
    result = evaluate(config, entries, nodes, "all" if digests == "all" else "prepull-set")
    view = result.view
    document: Any
    if output == "spawner-images":
        document = wire.spawner_images_json(view.spawner_images())
    elif output == "menu":
        document = wire.menu_json(view.menu_images(config.dropdown_menu, moment))
    elif output == "prepuller-status":
        document = wire.prepuller_status_json(
            config.images, view.prepuller_images(), view.node_statuses()
        )
    else:
        document = [wire.tag_json(i) for i in view.collection.listing(include_arch=True)]
    click.echo(json.dumps(document, indent=2))


def _load_config(path: Path | None) -> Config:
    try:
        return factory.load(path)
    except ConfigError as exc:
        _fail(str(exc))


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


@main.command("refresh")
@click.option("--now", "in_process", is_flag=True, help="Refresh in this process and wait.")
@config_option
@database_url_option
@amqp_url_option
@prefix_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary event as JSON.")
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
        click.echo(f"refresh requested (message id {message_id})")
        return
    config = _load_config(config_path)
    report = asyncio.run(_refresh_now(config, database_url))
    if as_json:
        click.echo(json.dumps(wire.converter.unstructure(report.summary), indent=2))
    else:
        click.echo("\n".join(_summary_lines(report)))
    if not report.succeeded:
        raise CommandError("the registry could not be listed; the last known state stays")


async def _refresh_now(config: Config, url: str | None) -> RefreshReport:
    try:
        async with factory.application(config, url) as app:
            return await app.refresh_now()
    except (ImageLedgerError, LedgerError) as exc:
        raise CommandError(str(exc)) from exc


async def _publish_refresh(url: str | None, prefix: str) -> str:
    from worker.adapters.broker import Broker, BrokerError, BrokerSettings, amqp_url
    from worker.domain.messages import RefreshRequested

    message_id = f"refresh-{uuid.uuid4()}"
    broker = Broker(BrokerSettings(url=amqp_url(url), prefix=prefix, connect_attempts=1))
    try:
        await broker.connect()
        await broker.publish_message(
            RefreshRequested(reason="imageledger refresh", requested_at=factory.utcnow()),
            message_id=message_id,
        )
    except BrokerError as exc:
        raise CommandError(f"cannot publish the refresh request: {exc}") from exc
    finally:
        await broker.close()
    return message_id


@main.command("run")
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
    from worker.adapters.broker import BrokerSettings
    from worker.adapters.broker import amqp_url as resolve_amqp_url
    from worker.consumer import Worker
    from worker.web import serve

    configure_logging("info")
    config = _load_config(config_path)
    settings = BrokerSettings(url=resolve_amqp_url(amqp_url), prefix=prefix)

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with (
            factory.runtime(config, settings, database_url) as runtime,
            serve(runtime, host, port),
        ):
            await Worker(runtime, schedule_refreshes=not no_schedule).run(stop)

    try:
        asyncio.run(_run())
    except (ImageLedgerError, LedgerError) as exc:
        raise CommandError(str(exc)) from exc


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


async def _read_view(url: str | None, which: str) -> list[dict[str, Any]]:
    engine = make_engine(resolve_database_url(url))
    try:
        reader = dashboard.menu_rows if which == "menu" else dashboard.prepull_status_rows
        return await reader(engine)
    except LedgerError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        await engine.dispose()


def _print_rows(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("(nothing yet: run a refresh)")
        return
    cells = [[str("" if row[c] is None else row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@main.command("menu")
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def menu_command(database_url: str | None, as_json: bool) -> None:
    """The spawner menu as the views hold it: radio entries, then the dropdown."""
    rows = asyncio.run(_read_view(database_url, "menu"))
    _print_rows(rows, ["section", "display_name", "prepulled", "reference"], as_json)


@main.command("status")
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def status_command(database_url: str | None, as_json: bool) -> None:
    """Prepull status per target image: eligible nodes that have it and that lack it."""
    rows = asyncio.run(_read_view(database_url, "status"))
    columns = ["display_name", "prepulled", "present_nodes", "missing_nodes", "digest"]
    _print_rows(rows, columns, as_json)


main.add_command(migrate_command)
main.add_command(rebuild_command)
