"""What ``history``, ``explain`` and ``unpark`` share: reading and finding the named image."""

from __future__ import annotations

from typing import Any

from worker.adapters.ledger import ExplainStore
from worker.cli.common import BadInputError, UnknownError
from worker.domain.explain import ImageQuery, parse_image_query
from worker.domain.references import InvalidReferenceError
from worker.domain.targets import TagFacts

__all__ = [
    "find_image",
    "parse_image",
    "short_digest",
]


def parse_image(text: str, argument: str = "IMAGE") -> ImageQuery:
    """The IMAGE (or TAG) argument, or a bad-input error saying what is wrong with it."""
    try:
        return parse_image_query(text)
    except InvalidReferenceError as exc:
        raise BadInputError(f"{argument}: {exc}") from exc


async def find_image(store: ExplainStore, query: ImageQuery) -> TagFacts:
    """The one current tag the name stands for; unknown (3) or ambiguous (2) otherwise."""
    found = await store.find_tags(query)
    if not found and query.tag is not None and query.digest is not None:
        current = await store.find_tags(
            ImageQuery(query.tag, None, query.registry, query.repository)
        )
        if current:
            raise UnknownError(f"{query}: the tag names {current[0].digest} now, not that digest")
    if not found:
        raise UnknownError(await _unknown_message(store, query))
    if len(found) > 1:
        names = ", ".join(f"{t.registry}/{t.repository}:{t.tag}" for t in found)
        raise BadInputError(f"{query} is in several repositories ({names}): name one of them")
    return found[0]


async def _unknown_message(store: ExplainStore, query: ImageQuery) -> str:
    if query.tag is None:
        return f"unknown image {query}: no current tag names that digest"
    removed = await store.removed(query)
    if removed:
        where, at = removed[0]
        return f"unknown image {query}: {where} was removed at {at.isoformat(timespec='seconds')}"
    return f"unknown image {query}: no repository lists that tag"


def short_digest(digest: Any) -> str:
    """A digest shortened for tables (``sha256:`` and 12 hex digits)."""
    if not isinstance(digest, str):
        return ""
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest
