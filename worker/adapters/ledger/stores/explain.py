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
from worker.adapters.ledger.statements import Statement, statement
from worker.adapters.ledger.stores.history import decode_event
from worker.domain.explain import ExplainInput, ImageQuery, attempt_of
from worker.domain.prepull import PairState, PrepullSettings
from worker.domain.projection import NodeImageRow, NodeRow, PolicyRow
from worker.domain.targets import NewerTag, TagFacts, TargetRow

__all__ = ["ExplainStore"]

_TAGS = statement("explain/tags")
_REMOVED = statement("explain/removed")
_DIGEST_KNOWN = Statement("SELECT EXISTS (SELECT 1 FROM ledger.node_images WHERE digest = :digest)")
_TARGETS = statement("explain/targets")
_NEWER = statement("explain/newer")
_IN_FLIGHT = statement("explain/in_flight")
_IN_FLIGHT_TOTAL = Statement(
    "SELECT count(*) FROM ledger.node_images"
    " WHERE prepull_state = 'requested' AND present IS NOT TRUE"
)
_ATTEMPTS = statement("explain/attempts")


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
        named = {"registry": query.registry, "repository": query.repository}
        async with self._db("read dashboard.tags") as db:
            rows = await _TAGS.fetch(db, tag=query.tag, digest=query.digest, **named)
        return [_tag_facts(r) for r in rows]

    async def removed(self, query: ImageQuery) -> list[tuple[str, datetime]]:
        """``registry/repository:tag`` and removal time of each removed tag of that name."""
        if query.tag is None:
            return []
        async with self._db("read ledger.tags") as db:
            named = {"registry": query.registry, "repository": query.repository}
            rows = await _REMOVED.fetch(db, tag=query.tag, **named)
        return [(f"{r[0]}/{r[1]}:{query.tag}", r[2]) for r in rows]

    async def digest_known(self, digest: str) -> bool:
        """Whether any node has a presence or prepull record of the digest."""
        async with self._db("read ledger.node_images") as db:
            return bool(await _DIGEST_KNOWN.fetchval(db, digest=digest))

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
        named = {"registry": image.registry, "repository": image.repository}
        digest = image.digest or ""
        async with self._db("read the prepull state") as db:
            targets = await _TARGETS.fetch(db, tag=image.tag, digest=image.digest, **named)
            policies: list[PolicyRow] = await fetch_keyed(db, CODECS[PolicyRow], [repo])
            newer = await _NEWER.fetch(db, tag=image.tag, **named)
            nodes: list[NodeRow] = await fetch_keyed(db, CODECS[NodeRow], [node])
            pairs: list[NodeImageRow] = await fetch_keyed(
                db, CODECS[NodeImageRow], [(node, digest)]
            )
            in_flight = await _IN_FLIGHT.fetch(db, node=node, digest=digest)
            total = await _IN_FLIGHT_TOTAL.fetchval(db)
            stream = f"prepull:{node}"
            events = await _ATTEMPTS.fetch(db, stream=stream, digest=digest, newest=self._attempts)
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
