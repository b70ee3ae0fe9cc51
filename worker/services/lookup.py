"""Finding the one current image an operator's name stands for (explain, unpark)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from worker.domain.errors import AmbiguousImageError, UnknownImageError
from worker.domain.explain import ImageQuery
from worker.domain.targets import TagFacts

__all__ = ["ImageFinder", "find_image"]


class ImageFinder(Protocol):
    """What finding an image reads of the ledger."""

    async def find_tags(self, query: ImageQuery) -> list[TagFacts]:
        """The current tags the name stands for: a tag in every repository holding it (or
        the one named), or the primary tag of a digest per repository."""

    async def removed(self, query: ImageQuery) -> list[tuple[str, datetime]]:
        """``registry/repository:tag`` and removal time of each removed tag of that name."""


async def find_image(store: ImageFinder, query: ImageQuery) -> TagFacts:
    """The one current tag the name stands for.

    Raises
    ------
    UnknownImageError
        No current tag names it (the message says when a removed tag was removed, or which
        digest the tag names now when another was given).
    AmbiguousImageError
        Several repositories hold the tag: the full reference is needed.
    """
    found = await store.find_tags(query)
    if not found and query.tag is not None and query.digest is not None:
        current = await store.find_tags(
            ImageQuery(query.tag, None, query.registry, query.repository)
        )
        if current:
            raise UnknownImageError(
                f"{query}: the tag names {current[0].digest} now, not that digest"
            )
    if not found:
        raise UnknownImageError(await _unknown_message(store, query))
    if len(found) > 1:
        names = ", ".join(f"{t.registry}/{t.repository}:{t.tag}" for t in found)
        raise AmbiguousImageError(f"{query} is in several repositories ({names}): name one of them")
    return found[0]


async def _unknown_message(store: ImageFinder, query: ImageQuery) -> str:
    if query.tag is None:
        return f"unknown image {query}: no current tag names that digest"
    removed = await store.removed(query)
    if removed:
        where, at = removed[0]
        return f"unknown image {query}: {where} was removed at {at.isoformat(timespec='seconds')}"
    return f"unknown image {query}: no repository lists that tag"
