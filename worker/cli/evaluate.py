"""``imageledger evaluate``: the offline policy dry-run over files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from worker import converter as wire
from worker.cli.common import Command, guard, parse_time, read_data
from worker.cli.tables import print_table
from worker.domain.menu import ImageCatalog, MenuImages
from worker.domain.nodes import Node
from worker.services.evaluate import evaluate

__all__ = ["evaluate_command"]


TABLE_COLUMNS = {"tag": "tag", "display_name": "name", "type": "type", "digest": "digest",
                 "target": "prepull target", "prepulled": "prepulled", "menu": "menu",
                 "aliases": "aliases"}  # fmt: skip


def tag_rows(view: ImageCatalog, menu: MenuImages, with_nodes: bool) -> list[dict[str, Any]]:
    """One row per tag, in display order: prepull target or not, prepulled (only known
    with nodes), and the menu sections showing it."""
    targets = {image.tag for image in view.prepull_set.listing()}
    radio, dropdown = set(menu.menu), set(menu.dropdown)
    rows = []
    for image in view.collection.listing(include_arch=True):
        entry = view.menu_entry(image)
        sections = [name for name, entries in (("radio", radio), ("dropdown", dropdown))
                    if entry in entries]  # fmt: skip
        target = image.tag in targets
        rows.append({
            "tag": image.tag, "display_name": image.display_name,
            "type": image.parsed.image_type.value, "digest": image.digest,
            "target": target, "prepulled": view.is_prepulled(image) if with_nodes and target
            else None, "menu": sections, "aliases": image.alias_names(),
        })  # fmt: skip
    return rows


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
    type=click.Choice(["spawner-images", "menu", "prepuller-status", "tags", "table"]),
    default="menu",
    show_default=True,
    help="What to print: JSON in the reference's shapes, or a table of the tags.",
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

    Prints JSON in the reference implementation's shapes, or with --output table one row
    per tag in display order: whether it is prepulled (a target, and on every eligible node
    when --nodes is given) and where the menu shows it.
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
    elif output == "tags":
        document = [wire.tag_json(i) for i in view.collection.listing(include_arch=True)]
    else:
        rows = tag_rows(view, view.menu_images(config.dropdown_menu, moment), bool(nodes))
        print_table(rows, TABLE_COLUMNS)
        return
    click.echo(json.dumps(document, indent=2))
