"""Time travel for operators: a tag's digests over time, the images a node held, from the log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from attrs import asdict, frozen

from worker.domain.errors import InvalidInputError, UnknownImageError, UnknownNodeError
from worker.domain.events import Event
from worker.domain.explain import ImageQuery
from worker.domain.history import TagChange, node_changes, tag_changes
from worker.domain.projection import TagInterval

__all__ = [
    "HistoryLedger",
    "NodeHistory",
    "TagAt",
    "TagHistory",
    "node_history",
    "tag_at",
    "tag_history",
]

Row = dict[str, Any]


class HistoryLedger(Protocol):
    """What the history reads of the ledger (views, and the log for a node's events)."""

    async def tag_stretches(
        self, tag: str, registry: str | None = None, repository: str | None = None
    ) -> list[TagInterval]:
        """Every stretch of the tag's history, per repository holding it (or the one given)."""

    async def tag_at(
        self, tag: str, at: datetime, registry: str | None = None, repository: str | None = None
    ) -> list[Row]:
        """Per repository, the stretch of the tag's history in force at ``at``."""

    async def node(self, node: str) -> Row | None:
        """The node's row, or None for a node never seen."""

    async def node_images_at(self, node: str, at: datetime) -> list[Row]:
        """The digests the node held at ``at``."""

    async def image_names(self, digests: Sequence[str]) -> dict[str, Row]:
        """The primary image (registry, repository, tag, display name) of each known digest."""

    async def node_events(self, node: str, until: datetime, limit: int) -> list[Event]:
        """The node's newest ``limit`` events observed at or before ``until``, in log order."""


@frozen
class TagHistory:
    """What happened to a tag, and the tag each digest it named goes by now (the digest's
    primary tag), so that a move can say which image it came from and went to."""

    changes: list[TagChange]
    tags: dict[str, str]
    """Digest -> its primary tag now; a digest no tag names any more is left out."""

    def tag_of(self, digest: str | None) -> str | None:
        """The primary tag of ``digest`` now, if any tag names it."""
        return self.tags.get(digest) if digest else None


@frozen
class TagAt:
    """The digest a tag named at a moment, per repository holding it then (maybe none),
    and when the tag was first seen at all."""

    first_seen_at: datetime
    digests: list[Row]


@frozen
class NodeHistory:
    """The images a node held at a moment (with their tags), and its history up to then."""

    node: str
    at: datetime
    images: list[Row]
    changes: list[Row]


async def _stretches(store: HistoryLedger, query: ImageQuery) -> tuple[str, list[TagInterval]]:
    if query.tag is None:
        raise InvalidInputError(f"{query}: give a tag (or registry/repository:tag), not a digest")
    stretches = await store.tag_stretches(query.tag, query.registry, query.repository)
    if not stretches:
        raise UnknownImageError(f"unknown tag {query}: no repository ever listed it")
    return query.tag, stretches


async def tag_history(store: HistoryLedger, query: ImageQuery) -> TagHistory:
    """What happened to the tag: discovered, resolved, moved, removed, in every repository
    that held it (or the one named), with the primary tag of each digest it named. Raises
    UnknownImageError for a tag never listed."""
    _, stretches = await _stretches(store, query)
    changes = tag_changes(stretches)
    digests = {d for c in changes for d in (c.digest, c.previous_digest) if d}
    names = await store.image_names(sorted(digests))
    return TagHistory(changes, {d: row["tag"] for d, row in names.items() if row.get("tag")})


async def tag_at(store: HistoryLedger, query: ImageQuery, at: datetime) -> TagAt:
    """The digest the tag named at ``at``. Raises UnknownImageError for a tag never listed."""
    tag, stretches = await _stretches(store, query)
    rows = await store.tag_at(tag, at, query.registry, query.repository)
    return TagAt(min(s.valid_from for s in stretches), rows)


async def node_history(store: HistoryLedger, node: str, at: datetime, limit: int) -> NodeHistory:
    """The images ``node`` held at ``at`` and its newest ``limit`` changes up to then, each
    digest named by its primary tag. Raises UnknownNodeError for a node never seen."""
    if await store.node(node) is None:
        raise UnknownNodeError(f"unknown node {node}: it never reported an inventory")
    images = await store.node_images_at(node, at)
    events = await store.node_events(node, at, limit)
    changes = [asdict(c) for c in node_changes(events)][-limit:]
    digests = [i["digest"] for i in images] + [c["digest"] for c in changes if c["digest"]]
    names = await store.image_names(digests)
    for row in [*images, *changes]:
        name = names.get(row.get("digest") or "", {})
        row["tag"] = name.get("tag")
        row["display_name"] = name.get("display_name")
    images.sort(key=lambda i: (i["tag"] is None, i["tag"] or "", i["digest"]))
    return NodeHistory(node, at, images, changes)
