"""The dashboard views over a small cluster: prepull status, queue, menu, tags, rollout."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg

from tests.support.database import raw_url
from tests.support.derived import store_derived
from tests.support.events import T0
from worker.adapters.ledger.eventlog import EventLog
from worker.domain.events import (
    CachedImage,
    Event,
    NodeInventoryObserved,
    NodeSeen,
    PrepullRequested,
    PrepullSucceeded,
    RefreshCompleted,
    RequestCount,
    TagDiscovered,
)
from worker.domain.images import Repository
from worker.domain.nodes import Node, Taint
from worker.domain.policy import PrepullPolicy

REPO = Repository("registry.test", "lsst/sciplat")
SOURCE: dict[str, Any] = {"registry": REPO.registry, "repository": REPO.repository}
A, B, C = (f"sha256:{c * 64}" for c in "abc")
TAGS = {"recommended": A, "w_2077_43": A, "w_2077_42": B, "d_2077_10_23": C, "latest_weekly": None}
POLICY = PrepullPolicy(num_weeklies=2, num_dailies=1, num_releases=0)


def history() -> list[Event]:
    events: list[Event] = [
        TagDiscovered(tag=t, digest=d, occurred_at=T0, **SOURCE) for t, d in TAGS.items()
    ]
    events += [
        NodeSeen(node="node1", eligible=True, occurred_at=T0),
        NodeSeen(node="node2", eligible=True, occurred_at=T0),
        NodeSeen(node="node3", taints=(Taint("gpu", "NoSchedule", "true"),), eligible=False,
                 comment="Node is tainted (NoSchedule, gpu = true)", occurred_at=T0),
        NodeInventoryObserved(node="node1", appeared=(CachedImage(A, 9), CachedImage(B, 8)),
                              image_count=2, occurred_at=T0 + timedelta(minutes=5)),
        NodeInventoryObserved(node="node2", appeared=(CachedImage(A, 9),), image_count=1,
                              occurred_at=T0 + timedelta(minutes=7)),
        RefreshCompleted(refresh_id="r1", started_at=T0, tags_total=5, discovered=5,
                         requests=(RequestCount("GET", 200, 1), RequestCount("HEAD", 200, 4)),
                         flagged_tags=("d_2077_10_23",), occurred_at=T0, **SOURCE),
    ]  # fmt: skip
    return events


async def derive(log: EventLog) -> None:
    """What the lead's refresh will do: derive rows from the domain and store them."""
    nodes = [Node("node1", digests={A: 9, B: 8}), Node("node2", digests={A: 9}),
             Node("node3", taints=(Taint("gpu", "NoSchedule", "true"),))]  # fmt: skip
    await store_derived(log, REPO, TAGS, POLICY, nodes, T0)


async def rows(url: str, sql: str) -> list[dict[str, Any]]:
    db = await asyncpg.connect(raw_url(url))
    try:
        return [dict(r) for r in await db.fetch(sql)]
    finally:
        await db.close()


async def test_prepull_status_queue_and_menu_follow_the_nodes(
    event_log: EventLog, database_url: str
) -> None:
    await event_log.append(history())
    await derive(event_log)
    status = await rows(
        database_url,
        "SELECT tag, eligible_nodes, present_nodes, missing_nodes,"
        " prepulled FROM dashboard.prepull_status ORDER BY display_position",
    )
    assert status == [
        {"tag": "w_2077_43", "eligible_nodes": 2, "present_nodes": 2, "missing_nodes": 0,
         "prepulled": True},
        {"tag": "w_2077_42", "eligible_nodes": 2, "present_nodes": 1, "missing_nodes": 1,
         "prepulled": False},
        {"tag": "d_2077_10_23", "eligible_nodes": 2, "present_nodes": 0, "missing_nodes": 2,
         "prepulled": False},
    ]  # fmt: skip
    queue = await rows(
        database_url,
        "SELECT tag, node, status FROM dashboard.prepull_queue ORDER BY display_position, node",
    )
    assert [(q["tag"], q["node"], q["status"]) for q in queue] == [
        ("w_2077_42", "node2", "pending"),
        ("d_2077_10_23", "node1", "pending"),
        ("d_2077_10_23", "node2", "pending"),
    ]
    radio = "SELECT display_name FROM dashboard.menu WHERE section = 'radio'"
    assert [m["display_name"] for m in await rows(database_url, radio)] == [
        "Recommended (Weekly 2077_43)"
    ]
    await event_log.append([
        PrepullRequested(tag="w_2077_42", digest=B, node="node2", occurred_at=T0 + timedelta(9),
                         **SOURCE),
    ])  # fmt: skip
    queue = await rows(
        database_url,
        "SELECT status FROM dashboard.prepull_queue WHERE node = 'node2' AND tag = 'w_2077_42'",
    )
    assert queue == [{"status": "in_flight"}]
    await event_log.append([
        PrepullSucceeded(tag="w_2077_42", digest=B, node="node2", occurred_at=T0 + timedelta(10),
                         **SOURCE),
    ])  # fmt: skip
    assert [m["display_name"] for m in await rows(database_url, radio)] == [
        "Recommended (Weekly 2077_43)",
        "Weekly 2077_42",
    ]
    rollout = await rows(
        database_url,
        "SELECT tag, first_seen_at, completed_at, time_to_prepull"
        " FROM dashboard.image_rollout ORDER BY tag",
    )
    assert rollout[-1] == {"tag": "w_2077_43", "first_seen_at": T0,
                           "completed_at": T0 + timedelta(minutes=7),
                           "time_to_prepull": timedelta(minutes=7)}  # fmt: skip


async def test_tags_refreshes_and_nodes(event_log: EventLog, database_url: str) -> None:
    await event_log.append(history())
    await derive(event_log)
    tags = await rows(
        database_url,
        "SELECT tag, image_type, display_name, aliases, flagged"
        " FROM dashboard.tags ORDER BY type_rank, sort_text DESC",
    )
    assert [t["tag"] for t in tags] == ["recommended", "w_2077_43", "w_2077_42", "d_2077_10_23",
                                        "latest_weekly"]  # fmt: skip
    assert tags[0]["display_name"] == "Recommended (Weekly 2077_43)"
    assert tags[0]["aliases"] == ["w_2077_43"]
    assert [t["tag"] for t in tags if t["flagged"]] == ["d_2077_10_23"]
    refresh = await rows(database_url, "SELECT status, requests_total FROM dashboard.refreshes")
    assert refresh == [{"status": "completed", "requests_total": 5}]
    nodes = await rows(
        database_url, "SELECT node, eligible, comment, counted FROM dashboard.nodes ORDER BY node"
    )
    assert nodes[2] == {"node": "node3", "eligible": False, "counted": False,
                        "comment": "Node is tainted (NoSchedule, gpu = true)"}  # fmt: skip
    images = await rows(database_url, "SELECT digest, tag FROM dashboard.images ORDER BY tag")
    assert images == [{"digest": C, "tag": "d_2077_10_23"}, {"digest": B, "tag": "w_2077_42"},
                      {"digest": A, "tag": "w_2077_43"}]  # fmt: skip
