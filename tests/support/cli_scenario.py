"""A small cluster's log for the operator commands: tags that moved, nodes, failed prepulls.

Repository ``registry.test/lsst/sciplat``; policy: 2 weeklies, 1 daily, no release, node
selector ``pool=lab``. Tags: ``recommended`` and ``w_2077_43`` name A, ``w_2077_42`` B,
``w_2077_41`` D (the third weekly: not a target), ``d_2077_10_23`` C; ``latest_weekly`` was
discovered unresolved, resolved to B, moved to A and removed. Nodes: node1 and node2
(eligible), node3 (tainted NoSchedule gpu=true), node4 (outside the selector), node5
(eligible, never reported images). node1 held A and B, then B disappeared; node2 holds A.
C is in flight on node1 and parked on node2 after 3 failures; B failed once on node2.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.derived import store_derived
from worker.adapters.ledger.database import make_engine
from worker.adapters.ledger.eventlog import EventLog
from worker.domain.events import (
    CachedImage,
    Event,
    NodeInventoryObserved,
    NodeSeen,
    PolicyConfigured,
    PrepullFailed,
    PrepullParked,
    PrepullRequested,
    TagDiscovered,
    TagMoved,
    TagRemoved,
    TagResolved,
)
from worker.domain.images import Repository
from worker.domain.node_observation import OUTSIDE_SELECTOR
from worker.domain.nodes import Node, Taint
from worker.domain.policy import PrepullPolicy

__all__ = ["REPO", "SOURCE", "T0", "A", "B", "C", "D", "at", "build", "minutes", "scenario"]

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
REPO = Repository("registry.test", "lsst/sciplat")
SOURCE: dict[str, Any] = {"registry": REPO.registry, "repository": REPO.repository}
A, B, C, D = (f"sha256:{c * 64}" for c in "abcd")
TAGS = {"recommended": A, "w_2077_43": A, "w_2077_42": B, "w_2077_41": D, "d_2077_10_23": C}
POLICY = PrepullPolicy(num_weeklies=2, num_dailies=1, num_releases=0)
SELECTOR = {"pool": "lab"}
TAINT = Taint("gpu", "NoSchedule", "true")
TAINTED = "Node is tainted (NoSchedule, gpu = true)"


def minutes(n: float) -> datetime:
    """``T0`` plus ``n`` minutes."""
    return T0 + timedelta(minutes=n)


def at(n: float) -> str:
    """``minutes(n)`` as an ISO 8601 option value."""
    return minutes(n).isoformat()


def _tags() -> list[Event]:
    events: list[Event] = [
        TagDiscovered(tag=t, digest=d, occurred_at=T0, **SOURCE) for t, d in TAGS.items()
    ]
    events += [
        TagDiscovered(tag="latest_weekly", digest=None, occurred_at=T0, **SOURCE),
        TagResolved(tag="latest_weekly", digest=B, occurred_at=minutes(1), **SOURCE),
        TagMoved(tag="latest_weekly", old_digest=B, new_digest=A, occurred_at=minutes(60),
                 **SOURCE),
        TagRemoved(tag="latest_weekly", last_digest=A, occurred_at=minutes(120), **SOURCE),
        PolicyConfigured(prepull=POLICY, node_selector=SELECTOR, occurred_at=T0, **SOURCE),
    ]  # fmt: skip
    return events


def _nodes() -> list[Event]:
    lab = {"pool": "lab"}
    return [
        NodeSeen(node="node1", labels=lab, eligible=True, occurred_at=T0),
        NodeSeen(node="node2", labels=lab, eligible=True, occurred_at=T0),
        NodeSeen(node="node3", labels=lab, taints=(TAINT,), eligible=False, comment=TAINTED,
                 occurred_at=T0),
        NodeSeen(node="node4", labels={"pool": "other"}, eligible=False,
                 comment=OUTSIDE_SELECTOR, occurred_at=T0),
        NodeSeen(node="node5", labels=lab, eligible=True, occurred_at=T0),
        NodeInventoryObserved(node="node1", appeared=(CachedImage(A, 9), CachedImage(B, 8)),
                              image_count=2, occurred_at=minutes(5)),
        NodeInventoryObserved(node="node2", appeared=(CachedImage(A, 9),), image_count=1,
                              occurred_at=minutes(7)),
        NodeInventoryObserved(node="node1", disappeared=(B,), image_count=1,
                              occurred_at=minutes(30)),
    ]  # fmt: skip


def _prepulls() -> list[Event]:
    c = {"tag": "d_2077_10_23", "digest": C, **SOURCE}
    events: list[Event] = [
        PrepullRequested(node="node1", attempt=1, deadline=minutes(50), occurred_at=minutes(40),
                         **c),
    ]  # fmt: skip
    for n in range(3):
        events += [
            PrepullRequested(node="node2", attempt=n + 1, deadline=minutes(20 + n * 10),
                             occurred_at=minutes(10 + n * 10), **c),
            PrepullFailed(node="node2", reason=f"ErrImagePull: manifest unknown ({n + 1})",
                          occurred_at=minutes(15 + n * 10), **c),
        ]  # fmt: skip
    events += [
        PrepullParked(node="node2", failures=3, reason="3 consecutive failures",
                      occurred_at=minutes(45), registry=REPO.registry,
                      repository=REPO.repository, digest=C),
        PrepullRequested(node="node2", tag="w_2077_42", digest=B, deadline=minutes(60),
                         occurred_at=minutes(50), **SOURCE),
        PrepullFailed(node="node2", tag="w_2077_42", digest=B, reason="pod timed out",
                      occurred_at=minutes(55), **SOURCE),
    ]  # fmt: skip
    return events


def scenario() -> list[Event]:
    """Every event of the scenario, in log order."""
    return [*_tags(), *_nodes(), *_prepulls()]


async def derive(log: EventLog) -> None:
    """What a refresh stores beside the events: images, prepull targets and the menu."""
    nodes = [Node(f"node{n}", labels=SELECTOR) for n in (1, 2, 5)]
    await store_derived(log, REPO, TAGS, POLICY, nodes, T0, SELECTOR)


async def append(url: str, events: list[Event]) -> None:
    """Append events to the log of the database at ``url``."""
    engine = make_engine(url)
    try:
        await EventLog(engine).append(events)
    finally:
        await engine.dispose()


async def _build(url: str) -> None:
    engine = make_engine(url)
    try:
        log = EventLog(engine)
        await log.append(scenario())
        await derive(log)
    finally:
        await engine.dispose()


def build(url: str) -> None:
    """Write the scenario into the (migrated, empty) database at ``url``."""
    asyncio.run(_build(url))
