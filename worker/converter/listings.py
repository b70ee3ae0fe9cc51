"""Artifact Registry listings: the REST API's pages, and the tags a listing gives a repository.

The reference's fixtures hold the client library's listing (snake_case keys, sizes as
numbers); the REST API (``dockerImages.list``) writes camelCase, int64 sizes as strings,
and may add fields over time. Both become ``GarImage`` values, and ``gar_tag_entries``
turns either into the repository's tags the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from worker.converter.core import structure
from worker.converter.inputs import GarImage
from worker.converter.strict import ValidationError, camel_case
from worker.domain.images import Repository, TagEntry

__all__ = ["gar_page", "gar_tag_entries"]

_NAMES = tuple(a.name for a in attrs.fields(GarImage))


def gar_tag_entries(listing: Iterable[GarImage], repository: Repository) -> list[TagEntry]:
    """The tags of ``repository`` in a listing: images of other packages of the same
    Artifact Registry repository are skipped; each (image, tag) pair is one tag with the
    image's digest and size. Architecture-specific tags are kept as listed: the tag
    grammar of the domain classifies them."""
    out: list[TagEntry] = []
    for item in listing:
        name, _, digest = item.uri.partition("@")
        if name != str(repository) or not digest:
            continue
        out.extend(TagEntry(tag, digest, item.image_size_bytes) for tag in item.tags)
    return out


def gar_page(data: Any, what: str = "Artifact Registry page") -> tuple[list[GarImage], str | None]:
    """One answer of ``dockerImages.list``: its images and the next page's token (None on the
    last page). Fields this reader does not know are left out; a known field of the wrong
    type is a ValidationError."""
    if not isinstance(data, dict):
        raise ValidationError(f"invalid {what}: expected an object")
    images = data.get("dockerImages", [])
    token = data.get("nextPageToken") or None
    if not isinstance(images, list) or not (token is None or isinstance(token, str)):
        raise ValidationError(f"invalid {what}: dockerImages must be a list, nextPageToken text")
    snake = [_known_fields(item) for item in images]
    return structure(snake, list[GarImage], what), token


def _known_fields(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    picked = {name: item[camel_case(name)] for name in _NAMES if camel_case(name) in item}
    size = picked.get("image_size_bytes")
    if isinstance(size, str) and size.isdigit():
        picked["image_size_bytes"] = int(size)
    return picked
