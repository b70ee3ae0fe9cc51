"""The ``imageledger`` command."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml

from worker import converter as wire
from worker.config import ConfigError, load_config
from worker.converter import ValidationError
from worker.domain.nodes import Node
from worker.services.evaluate import evaluate

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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """imageledger: the image ledger of a notebook platform."""
    ctx.obj = {"debug": debug}


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
