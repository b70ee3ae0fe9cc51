"""What every ``imageledger`` subcommand shares: one-line errors, options, input and tables."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml

from worker import converter as wire
from worker import factory
from worker.cli.tables import Cell, Columns, cell_text, print_table, short_digest
from worker.domain.durations import parse_duration
from worker.domain.errors import EXIT_BAD_INPUT, EXIT_FAILURE, ImageLedgerError, InvalidInputError
from worker.domain.explain import ImageQuery, parse_image_query
from worker.domain.references import InvalidReferenceError

__all__ = [
    "PREFIX_ENV",
    "Command",
    "CommandError",
    "Group",
    "amqp_url_option",
    "config_option",
    "database_url_option",
    "fail",
    "guard",
    "json_option",
    "parse_image",
    "parse_time",
    "prefix_option",
    "print_json",
    "print_rows",
    "progress_reporter",
    "read_data",
    "short_digest",
]


class CommandError(click.ClickException):
    """A one-line error and the exit status that says what kind."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"imageledger: error: {self.format_message()}", err=True)


class Command(click.Command):
    """A subcommand whose ImageLedgerError ends it with one error line and the exit
    status its class names (``ImageLedgerError.exit_code``)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImageLedgerError as exc:
            raise CommandError(str(exc), exc.exit_code) from exc


class Group(click.Group):
    """A group of `Command` subcommands."""

    command_class = Command


def fail(message: str) -> NoReturn:
    """Stop with a bad-input error (exit status 2)."""
    raise CommandError(message, EXIT_BAD_INPUT)


config_option = click.option(
    "--config", "config_path", type=Path, help="Config YAML (or IMAGELEDGER_CONFIG)."
)
database_url_option = click.option(
    "--database-url",
    envvar=factory.DATABASE_URL_ENV,
    default=factory.DEFAULT_DATABASE_URL,
    show_default=True,
    help=f"PostgreSQL URL (or ${factory.DATABASE_URL_ENV}).",
)
amqp_url_option = click.option(
    "--amqp-url", envvar="IMAGELEDGER_AMQP_URL", show_envvar=True, help="RabbitMQ URL."
)
PREFIX_ENV = "IMAGELEDGER_BROKER_PREFIX"
prefix_option = click.option(
    "--prefix",
    envvar=PREFIX_ENV,
    show_envvar=True,
    default=factory.DEFAULT_PREFIX,
    show_default=True,
    help="The RabbitMQ exchange name and queue name prefix; it must be the workers' "
    "(`imageledger run` uses the same option and variable), or messages go where no "
    "worker reads them.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def read_data(path: Path, what: str) -> Any:
    """A JSON or YAML input file, or a one-line error naming it."""
    try:
        text = path.read_text()
    except OSError as exc:
        fail(f"{what} file {path}: cannot read: {exc.strerror or exc}")
    try:
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{what} file {path}: not valid JSON: {exc}")
    except yaml.YAMLError as exc:
        fail(f"{what} file {path}: not valid YAML: {wire.yaml_problem(exc)}")


_AGO = re.compile(r"(?:\d+(?:\.\d+)?\s*[a-z]+\s*)+", re.IGNORECASE)


def parse_time(
    value: str | None, option: str = "--now", *, relative: bool = False, now: datetime | None = None
) -> datetime:
    """An ISO 8601 option value (UTC when no zone is given) or, with ``relative``, a time
    ago such as ``2h``, ``3d`` or ``1h30m`` (``ago`` may follow); now when absent."""
    moment = now or datetime.now(tz=UTC)
    if value is None:
        return moment
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        if relative:
            ago = text.removesuffix("ago").strip()
            if _AGO.fullmatch(ago):
                try:
                    return moment - parse_duration(ago)
                except ValueError as exc:
                    fail(f"{option} {value!r}: {exc}")
            fail(f"{option} {value!r}: give an ISO 8601 time or a time ago such as 2h or 3d")
        fail(f"{option} {value!r}: not an ISO 8601 timestamp")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_image(text: str, argument: str = "IMAGE") -> ImageQuery:
    """The IMAGE (or TAG) argument, or a bad-input error saying what is wrong with it."""
    try:
        return parse_image_query(text)
    except InvalidReferenceError as exc:
        fail(f"{argument}: {exc}")


def guard(load: Callable[[], Any], path: Path) -> Any:
    """Run a loader; bad input in it becomes a bad-input error naming the file."""
    try:
        return load()
    except InvalidInputError as exc:
        message = str(exc)
        fail(message if str(path) in message else f"{path}: {message}")


def print_json(document: Any) -> None:
    """JSON for scripts: indented, timestamps as ISO 8601 strings."""
    click.echo(json.dumps(document, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def print_rows(
    rows: list[dict[str, Any]],
    columns: Columns,
    as_json: bool,
    empty: str = "(nothing)",
    cell: Cell = cell_text,
) -> None:
    """Rows as a table (the named columns, each value shown by ``cell``: drawn on a
    terminal, plain on a pipe), or all of them as JSON."""
    if as_json:
        print_json(rows)
        return
    print_table(rows, columns, empty=empty, cell=cell)


def _silent(done: int, total: int) -> None:
    """No progress shown (``--json``: the output is for a program)."""


def progress_reporter(
    label: str = "rebuild",
    unit: str = "events",
    tty: bool | None = None,
    out: Any = None,
    *,
    as_json: bool = False,
) -> Callable[[int, int], None]:
    """A progress callback ``(done, total)`` on stderr: a redrawn bar when stderr is a
    terminal, a line per 10% otherwise (logs and CI keep a readable record), nothing at
    all with ``as_json``."""
    if as_json:
        return _silent
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
            click.echo(f"\r{label} [{bar}] {done:,}/{total:,} {unit} {rate:,.0f}/s", nl=False,
                       file=stream)  # fmt: skip
            click.echo(end, nl=False, file=stream)
            return
        tenth = int(fraction * 10)
        if tenth > shown["tenth"]:
            shown["tenth"] = tenth
            click.echo(f"{label}: {done:,}/{total:,} {unit} ({fraction:.0%}), {rate:,.0f}/s",
                       file=stream)  # fmt: skip

    return report
