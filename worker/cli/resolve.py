"""``imageledger resolve``: which image a reference, tag or image class names now."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from worker import converter as wire
from worker import factory
from worker.adapters.ledger import LedgerError
from worker.cli.common import (
    EXIT_REGISTRY,
    EXIT_UNKNOWN,
    BadInputError,
    CommandError,
    RegistryCommandError,
    UnknownError,
    config_option,
    database_url_option,
    fail,
    json_option,
    load_config,
    print_json,
)
from worker.config import Config
from worker.domain.errors import (
    ImageLedgerError,
    InvalidDockerReferenceError,
    RegistryUnavailableError,
    UnknownImageError,
)
from worker.domain.spawner import ImageClass, ResolvedImage

__all__ = ["EXIT_REGISTRY", "EXIT_UNKNOWN_IMAGE", "resolve_command"]

EXIT_UNKNOWN_IMAGE = EXIT_UNKNOWN


async def _resolve(
    config: Config, url: str | None, reference: str | None, tag: str | None, cls: str | None
) -> ResolvedImage:
    try:
        async with factory.application(config, url) as app:
            if reference is not None:
                return await app.resolver.for_reference(reference)
            if tag is not None:
                return await app.resolver.for_tag(tag)
            assert cls is not None
            return await app.resolver.for_class(ImageClass(cls))
    except InvalidDockerReferenceError as exc:
        raise BadInputError(str(exc)) from exc
    except UnknownImageError as exc:
        raise UnknownError(str(exc)) from exc
    except RegistryUnavailableError as exc:
        raise RegistryCommandError(str(exc)) from exc
    except (ImageLedgerError, LedgerError) as exc:
        raise CommandError(str(exc)) from exc


def _lines(image: ResolvedImage) -> list[str]:
    return [
        image.name,
        f"  image:     {image.reference_with_digest}",
        f"  tag:       {image.tag}",
        f"  digest:    {image.digest}",
        f"  aliases:   {', '.join(image.aliases) or '(none)'}",
        f"  prepulled: {'yes' if image.prepulled else 'no'}",
    ]


@click.command("resolve")
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

    A tag, or a reference without a digest, is resolved by a fresh HEAD of the registry;
    a reference with a digest is looked up in the ledger. Exit codes: 2 invalid reference
    or bad input, 3 unknown image, 4 registry error, 1 any other failure.
    """
    if sum(x is not None for x in (reference, tag, image_class)) != 1:
        fail("give exactly one of REFERENCE, --tag or --class")
    config = load_config(config_path)
    image = asyncio.run(_resolve(config, database_url, reference, tag, image_class))
    if as_json:
        print_json(wire.resolved_image_json(image))
    else:
        click.echo("\n".join(_lines(image)))
