"""What every ``imageledger`` subcommand shares: one-line errors, options, input and tables."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from worker import factory
from worker.adapters.ledger import (
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    LedgerError,
    make_engine,
    safe_url,
)
from worker.adapters.ledger import database_url as resolve_database_url
from worker.config import Config, ConfigError
from worker.converter import ValidationError, yaml_problem

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILURE",
    "EXIT_REGISTRY",
    "EXIT_UNKNOWN",
    "BadInputError",
    "CommandError",
    "RegistryCommandError",
    "UnknownError",
    "amqp_url_option",
    "config_option",
    "database_url_option",
    "fail",
    "guard",
    "json_option",
    "load_config",
    "parse_time",
    "prefix_option",
    "print_json",
    "print_rows",
    "progress_reporter",
    "read_data",
    "run_on_database",
]

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_UNKNOWN = 3
EXIT_REGISTRY = 4
T = TypeVar("T")


class CommandError(click.ClickException):
    """A one-line error; ``exit_code`` says what kind."""

    exit_code = EXIT_FAILURE

    def show(self, file: Any = None) -> None:
        click.echo(f"imageledger: error: {self.format_message()}", err=True)


class BadInputError(CommandError):
    """A bad file, option or reference given by the operator."""

    exit_code = EXIT_BAD_INPUT


class UnknownError(CommandError):
    """The tag, image or node named is not known (exit status 3)."""

    exit_code = EXIT_UNKNOWN


class RegistryCommandError(CommandError):
    """The registry could not answer (exit status 4)."""

    exit_code = EXIT_REGISTRY


def fail(message: str) -> NoReturn:
    """Stop with a bad-input error (exit status 2)."""
    raise BadInputError(message)


config_option = click.option(
    "--config", "config_path", type=Path, help="Config YAML (or IMAGELEDGER_CONFIG)."
)
database_url_option = click.option(
    "--database-url",
    envvar=DATABASE_URL_ENV,
    default=DEFAULT_DATABASE_URL,
    show_default=True,
    help=f"PostgreSQL URL (or ${DATABASE_URL_ENV}).",
)
amqp_url_option = click.option("--amqp-url", envvar="IMAGELEDGER_AMQP_URL", help="RabbitMQ URL.")
prefix_option = click.option(
    "--prefix",
    envvar="IMAGELEDGER_BROKER_PREFIX",
    default="imageledger",
    show_default=True,
    help="Exchange and queue name prefix of the workers.",
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
        fail(f"{what} file {path}: not valid YAML: {yaml_problem(exc)}")


def parse_time(value: str | None, option: str = "--now") -> datetime:
    """An ISO 8601 option value (UTC when no zone is given); now when absent."""
    if value is None:
        return datetime.now(tz=UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option} {value!r}: not an ISO 8601 timestamp")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def guard(load: Callable[[], Any], path: Path) -> Any:
    """Run a loader; a validation error becomes a bad-input error naming the file."""
    try:
        return load()
    except (ValidationError, ConfigError) as exc:
        message = str(exc)
        fail(message if str(path) in message else f"{path}: {message}")


def load_config(path: Path | None) -> Config:
    """The configuration (option or IMAGELEDGER_CONFIG), or a bad-input error."""
    try:
        return factory.load(path)
    except ConfigError as exc:
        fail(str(exc))


def print_json(document: Any) -> None:
    """JSON for scripts: indented, timestamps as ISO 8601 strings."""
    click.echo(json.dumps(document, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def print_rows(
    rows: list[dict[str, Any]], columns: list[str], as_json: bool, empty: str = "(nothing)"
) -> None:
    """Rows as an aligned table (the named columns), or all of them as JSON."""
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo(empty)
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def run_on_database(url: str | None, action: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run ``action(engine)`` on a fresh engine; a database failure is one line naming the
    database (without password) and exit status 1."""
    resolved = resolve_database_url(url)

    async def main() -> T:
        engine = make_engine(resolved)
        try:
            return await action(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except LedgerError as exc:
        where = safe_url(resolved)
        raise CommandError(str(exc) if where in str(exc) else f"{exc} ({where})") from exc


def progress_reporter(
    label: str = "rebuild", unit: str = "events", tty: bool | None = None, out: Any = None
) -> Callable[[int, int], None]:
    """A progress callback ``(done, total)`` on stderr: a redrawn bar on a terminal, a line
    per 10% otherwise (logs and CI keep a readable record)."""
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
