"""``imageledger resolve``: which image a reference, tag or image class names now."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from worker import converter as wire
from worker import factory
from worker.cli.common import (
    Command,
    config_option,
    database_url_option,
    fail,
    json_option,
    print_json,
)
from worker.config import Config
from worker.domain.spawner import ImageClass, ResolvedImage
from worker.services.resolve import ImageName

__all__ = ["resolve_command"]


async def _resolve(config: Config, url: str | None, name: ImageName, value: str) -> ResolvedImage:
    async with factory.application(config, url) as app:
        return await app.resolver.resolve(name, value)


def _lines(image: ResolvedImage) -> list[str]:
    return [
        image.name,
        f"  image:     {image.reference_with_digest}",
        f"  tag:       {image.tag}",
        f"  digest:    {image.digest}",
        f"  aliases:   {', '.join(image.aliases) or '(none)'}",
        f"  prepulled: {'yes' if image.prepulled else 'no'}",
    ]


def _bare_tag(reference: str) -> None:
    """A bare name (``w_2077_43``, ``recommended``) is a tag, not a reference: say which
    option resolves it instead of failing on a reference without a tag."""
    if any(mark in reference for mark in "/:@"):
        return
    hint = f"imageledger resolve --tag {reference}"
    classes = [c.value for c in ImageClass]
    if reference in classes:
        hint += f" (or, for the image class, --class {reference})"
    fail(f"REFERENCE {reference!r} is a bare tag, not registry/repository:tag; for a tag of "
         f"the configured repository run: {hint}")  # fmt: skip


@click.command("resolve", cls=Command)
@click.argument("reference", required=False)
@click.option("--tag", help="A tag of the configured repository instead of a reference.")
@click.option(
    "--class",
    "image_class",
    type=click.Choice([c.value for c in ImageClass]),
    help="An image class of the prepull set instead of a reference.",
)
@config_option
@database_url_option
@json_option
def resolve_command(
    reference: str | None,
    tag: str | None,
    image_class: str | None,
    config_path: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Resolve REFERENCE (registry/repository:tag[@digest]), --tag or --class to an image.

    The ledger answers whenever it knows the digest; a tag it never resolved is HEADed in
    the registry. Exit codes: 2 invalid reference or bad input, 3 unknown image, 4 registry
    error, 1 any other failure.
    """
    given: list[tuple[ImageName, str | None]] = [
        ("reference", reference), ("tag", tag), ("class", image_class)
    ]  # fmt: skip
    named = [(name, value) for name, value in given if value is not None]
    if len(named) != 1:
        fail("give exactly one of REFERENCE, --tag or --class")
    if reference is not None:
        _bare_tag(reference)
    config = factory.load(config_path)
    ((name, value),) = named
    assert value is not None
    image = asyncio.run(_resolve(config, database_url, name, value))
    if as_json:
        print_json(wire.resolved_image_json(image))
    else:
        click.echo("\n".join(_lines(image)))
