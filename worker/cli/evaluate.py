"""``imageledger evaluate``: the offline policy dry-run over files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from worker import converter as wire
from worker.cli.common import Command, guard, parse_time, read_data
from worker.domain.nodes import Node
from worker.services.evaluate import evaluate

__all__ = ["evaluate_command"]


@click.command("evaluate", cls=Command)
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
    config = guard(lambda: wire.load_config(config_path), config_path)
    repository = config.images.repository
    tag_data = read_data(tags_path, "tags")
    entries = guard(lambda: wire.tag_entries(tag_data, repository, str(tags_path)), tags_path)
    nodes: list[Node] = []
    if nodes_path is not None:
        node_data = read_data(nodes_path, "nodes")
        nodes = guard(lambda: wire.nodes_from_file(node_data, str(nodes_path)), nodes_path)
    moment = parse_time(now)
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
