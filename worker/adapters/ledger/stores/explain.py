"""Read-only queries for ``imageledger explain`` and ``unpark``: one image, one node.

Finds the tags an image name stands for (``dashboard.tags``), and gathers what bears on
one image and one node into an ``ExplainInput``: the prepull targets of its repository
(``dashboard.prepull_targets``), the policy in force and the newer tags of its type
(``ledger.policies``, ``ledger.tags``), the node and the pair (``ledger.nodes``,
``ledger.node_images``), the other prepulls in flight, and the pair's prepull events from
the log. It decides nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.projections import fetch_keyed
from worker.adapters.ledger.rows import CODECS
from worker.adapters.ledger.stores.history import decode_event
from worker.domain.explain import ExplainInput, ImageQuery, attempt_of
from worker.domain.prepull import PairState, PrepullSettings
from worker.domain.projection import NodeImageRow, NodeRow, PolicyRow
from worker.domain.targets import NewerTag, TagFacts, TargetRow

__all__ = ["ExplainStore"]

_TAGS = """
SELECT t.registry, t.repository, t.tag, t.digest, t.image_type, t.parsed_type,
       t.display_name, t.architecture, t.cycle, t.alias_target, t.aliases, t.flagged
FROM dashboard.tags t
WHERE ($1::text IS NULL OR t.tag = $1) AND ($2::text IS NULL OR t.digest = $2)
  AND ($3::text IS NULL OR t.registry = $3) AND ($4::text IS NULL OR t.repository = $4)
  AND ($1::text IS NOT NULL OR EXISTS (
      SELECT 1 FROM dashboard.images i
      WHERE i.registry = t.registry AND i.repository = t.repository AND i.tag = t.tag))
ORDER BY t.registry, t.repository, t.type_rank, t.sort_text DESC
"""
_REMOVED = """
SELECT registry, repository, removed_at FROM ledger.tags
WHERE tag = $1 AND removed_at IS NOT NULL
  AND ($2::text IS NULL OR registry = $2) AND ($3::text IS NULL OR repository = $3)
ORDER BY registry, repository
"""
_DIGEST_KNOWN = "SELECT EXISTS (SELECT 1 FROM ledger.node_images WHERE digest = $1)"
_TARGETS = """
SELECT tag, digest, display_name, image_type, pull FROM dashboard.prepull_targets
WHERE registry = $1 AND repository = $2 AND (tag = $3 OR digest = $4)
ORDER BY display_position, tag
"""
_NEWER = """
SELECT t.tag, t.architecture, t.cycle
FROM ledger.tags t
JOIN ledger.tags me ON me.registry = t.registry AND me.repository = t.repository AND me.tag = $3
WHERE t.registry = $1 AND t.repository = $2 AND t.removed_at IS NULL
  AND t.image_type = me.image_type AND t.sort_text > me.sort_text
ORDER BY t.sort_text DESC
LIMIT 1000
"""
_IN_FLIGHT = """
SELECT node, digest, coalesce(present, false), prepull_state, prepull_requests,
       prepull_failures, prepull_deadline, prepull_finished_at, registry, repository, tag
FROM ledger.node_images
WHERE node = $1 AND digest <> $2 AND prepull_state = 'requested' AND present IS NOT TRUE
"""
_IN_FLIGHT_TOTAL = """
SELECT count(*) FROM ledger.node_images
WHERE prepull_state = 'requested' AND present IS NOT TRUE
"""
_ATTEMPTS = """
SELECT type, version, data FROM (
    SELECT position, type, version, data FROM ledger.events
    WHERE stream = $1 AND type LIKE 'prepull.%' AND data ->> 'digest' = $2
    ORDER BY position DESC LIMIT $3
) newest ORDER BY position
"""


def _tag_facts(r: Any) -> TagFacts:
    return TagFacts(
        registry=r["registry"],
        repository=r["repository"],
        tag=r["tag"],
        digest=r["digest"],
        image_type=r["image_type"],
        parsed_type=r["parsed_type"],
        display_name=r["display_name"],
        architecture=r["architecture"],
        cycle=r["cycle"],
        alias_target=r["alias_target"],
        aliases=tuple(r["aliases"] or ()),
        flagged=bool(r["flagged"]),
    )


class ExplainStore:
    """Reads what bears on one image and one node."""

    def __init__(self, engine: AsyncEngine, attempts: int = 20) -> None:
        self._engine = engine
        self._attempts = attempts

    @asynccontextmanager
    async def _db(self, what: str) -> AsyncIterator[Any]:
        async with translate_errors(what), self._engine.connect() as conn:
            raw = await conn.get_raw_connection()
            yield raw.driver_connection

    async def find_tags(self, query: ImageQuery) -> list[TagFacts]:
        """The current tags the name stands for: a tag in every repository holding it (or
        the one named), or the primary tag of a digest per repository."""
        args = (query.tag, query.digest, query.registry, query.repository)
        async with self._db("read dashboard.tags") as db:
            return [_tag_facts(r) for r in await db.fetch(_TAGS, *args)]

    async def removed(self, query: ImageQuery) -> list[tuple[str, datetime]]:
        """``registry/repository:tag`` and removal time of each removed tag of that name."""
        if query.tag is None:
            return []
        async with self._db("read ledger.tags") as db:
            rows = await db.fetch(_REMOVED, query.tag, query.registry, query.repository)
        return [(f"{r[0]}/{r[1]}:{query.tag}", r[2]) for r in rows]

    async def digest_known(self, digest: str) -> bool:
        """Whether any node has a presence or prepull record of the digest."""
        async with self._db("read ledger.node_images") as db:
            return bool(await db.fetchval(_DIGEST_KNOWN, digest))

    async def node(self, name: str) -> NodeRow | None:
        """The node's projection row, or None for a node never seen."""
        async with self._db("read ledger.nodes") as db:
            rows: list[NodeRow] = await fetch_keyed(db, CODECS[NodeRow], [name])
        return rows[0] if rows else None

    async def gather(
        self, image: TagFacts, node: str, now: datetime, settings: PrepullSettings
    ) -> ExplainInput:
        """Everything the answer for ``image`` on ``node`` needs, read in one connection."""
        repo = (image.registry, image.repository)
        digest = image.digest or ""
        async with self._db("read the prepull state") as db:
            targets = await db.fetch(_TARGETS, *repo, image.tag, image.digest)
            policies: list[PolicyRow] = await fetch_keyed(db, CODECS[PolicyRow], [repo])
            newer = await db.fetch(_NEWER, *repo, image.tag)
            nodes: list[NodeRow] = await fetch_keyed(db, CODECS[NodeRow], [node])
            pairs: list[NodeImageRow] = await fetch_keyed(
                db, CODECS[NodeImageRow], [(node, digest)]
            )
            in_flight = await db.fetch(_IN_FLIGHT, node, digest)
            total = await db.fetchval(_IN_FLIGHT_TOTAL)
            events = await db.fetch(_ATTEMPTS, f"prepull:{node}", digest, self._attempts)
        policy = policies[0] if policies else None
        attempts = (attempt_of(decode_event(r[0], r[1], r[2])) for r in events)
        return ExplainInput(
            image=image,
            node_name=node,
            now=now,
            settings=settings,
            targets=tuple(TargetRow(*r) for r in targets),
            policy=policy.prepull if policy else None,
            node_selector=dict(policy.node_selector) if policy else None,
            tolerations=policy.tolerations if policy else (),
            newer=tuple(NewerTag(*r) for r in newer),
            node=nodes[0] if nodes else None,
            pair=pairs[0] if pairs else None,
            attempts=tuple(a for a in attempts if a is not None),
            in_flight_on_node=tuple(PairState(*r) for r in in_flight),
            in_flight_total=int(total or 0),
        )
