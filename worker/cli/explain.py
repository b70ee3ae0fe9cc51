"""``imageledger explain``: why an image is or is not prepulled (or planned) on a node."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click

from worker import factory
from worker.cli.common import (
    Command,
    config_option,
    database_url_option,
    json_option,
    parse_image,
    print_json,
)
from worker.converter import converter
from worker.domain.errors import UnknownNodeError
from worker.domain.explain import Explanation
from worker.domain.prepull import PrepullSettings
from worker.services.prepull import prepull_settings

__all__ = ["explain_command"]

_MARKS = {True: "+", False: "-", None: " "}


def _settings(config_path: Path | None) -> tuple[PrepullSettings, str]:
    """The worker's prepull settings from the configuration, or the defaults without one."""
    if config_path is None and not os.environ.get(factory.CONFIG_ENV):
        return PrepullSettings(), "prepull settings: defaults (no --config given)"
    return prepull_settings(factory.load(config_path)), "prepull settings: from the configuration"


def _show(answer: Explanation, note: str) -> None:
    click.echo(f"{answer.image} on {answer.node}: {answer.verdict}")
    click.echo(f"  {answer.summary}")
    for finding in answer.findings:
        click.echo(f"  {_MARKS[finding.ok]} {finding.topic:<9}{finding.text}")
    click.echo(f"  ({note})")


@click.command("explain", cls=Command)
@click.argument("image")
@click.argument("node")
@config_option
@database_url_option
@json_option
def explain_command(
    image: str, node: str, config_path: Path | None, database_url: str | None, as_json: bool
) -> None:
    """Why IMAGE is or is not prepulled, or planned, on NODE.

    IMAGE is a tag, registry/repository:tag or a digest. The answer says whether the image
    is a prepull target and why, whether the node is known, selected and eligible, whether
    it holds the digest (and how that is known), and where its prepulls stand: requests,
    failures with their reasons, the next retry after back-off, parked or not. The back-off
    and attempt limits come from --config (or IMAGELEDGER_CONFIG), else the defaults.
    Lines marked + speak for the prepull, - against it.
    """
    query = parse_image(image)
    settings, note = _settings(config_path)
    answer = asyncio.run(factory.Operations(database_url).explain(query, node, settings))
    if as_json:
        document = converter.unstructure(answer)
        document["settings"] = note
        print_json(document)
    else:
        _show(answer, note)
    if not answer.node_known:
        raise UnknownNodeError(f"unknown node {node}: it never reported an inventory")
