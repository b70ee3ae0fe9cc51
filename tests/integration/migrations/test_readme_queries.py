"""The README's example dashboard queries run, as the reader role, and answer what they say."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from tests.support.database import raw_url
from tests.support.derived import store_derived
from worker.adapters.ledger.eventlog import EventLog
from worker.domain.events import (
    CachedImage,
    Event,
    NodeInventoryObserved,
    NodeSeen,
    PrepullFailed,
    PrepullParked,
    PrepullRequested,
    TagDiscovered,
    TagMoved,
)
from worker.domain.images import Repository
from worker.domain.nodes import Node, Taint
from worker.domain.policy import PrepullPolicy

README = Path(__file__).resolve().parents[3] / "README.md"
REPO = Repository("registry.test", "lsst/sciplat")
SOURCE: dict[str, Any] = {"registry": REPO.registry, "repository": REPO.repository}
A, B, C, D = (f"sha256:{c * 64}" for c in "abcd")
NOW = datetime.now(tz=UTC).replace(microsecond=0)
TAINT = Taint("gpu", "NoSchedule", "true")
CURRENT = {"recommended": D, "w_2077_44": D, "w_2077_43": A, "w_2077_42": B, "d_2077_10_23": C}
POLICY = PrepullPolicy(num_weeklies=2, num_dailies=1, num_releases=0)


def readme_queries() -> list[str]:
    """The ```sql blocks of the README's views section, in order."""
    text = README.read_text()
    section = text[text.index("## Views and example dashboard queries") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


def ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def history() -> list[Event]:
    tags = {"recommended": A, "w_2077_43": A, "w_2077_42": B, "d_2077_10_23": C}
    events: list[Event] = [
        TagDiscovered(tag=t, digest=d, occurred_at=ago(10), **SOURCE) for t, d in tags.items()
    ]
    events += [
        TagDiscovered(tag="w_2077_44", digest=D, occurred_at=ago(2), **SOURCE),
        TagMoved(tag="recommended", old_digest=A, new_digest=D, occurred_at=ago(2), **SOURCE),
        NodeSeen(node="node1", eligible=True, occurred_at=ago(10)),
        NodeSeen(node="node2", eligible=True, occurred_at=ago(10)),
        NodeSeen(node="node3", taints=(TAINT,), eligible=False,
                 comment="Node is tainted (NoSchedule, gpu = true)", occurred_at=ago(10)),
        NodeInventoryObserved(node="node1", appeared=(CachedImage(A, 9), CachedImage(D, 9)),
                              image_count=2, occurred_at=ago(1)),
        NodeInventoryObserved(node="node2", appeared=(CachedImage(A, 9),), image_count=1,
                              occurred_at=ago(1)),
        PrepullRequested(tag="d_2077_10_23", digest=C, node="node2", occurred_at=ago(1),
                         **SOURCE),
        PrepullFailed(tag="d_2077_10_23", digest=C, node="node2", reason="ErrImagePull",
                      occurred_at=ago(1) + timedelta(minutes=5), **SOURCE),
        PrepullParked(digest=C, node="node1", failures=5, reason="5 consecutive failures",
                      occurred_at=ago(1), **SOURCE),
    ]  # fmt: skip
    return events


async def derive(log: EventLog) -> None:
    """The rows a refresh derives from the domain for the current tags."""
    nodes = [Node("node1", digests={A: 9, D: 9}), Node("node2", digests={A: 9}),
             Node("node3", taints=(TAINT,))]  # fmt: skip
    await store_derived(log, REPO, CURRENT, POLICY, nodes, NOW)


async def test_readme_queries_answer_as_the_reader(event_log: EventLog, reader_login: str) -> None:
    await event_log.append(history())
    await derive(event_log)
    queries = readme_queries()
    assert len(queries) == 5
    db = await asyncpg.connect(raw_url(reader_login))
    try:
        answers = [[tuple(row.values()) for row in await db.fetch(q)] for q in queries]
    finally:
        await db.close()
    lacking, moves, rollout, failing, at = answers
    assert lacking == [("node2",)]
    assert moves == [("recommended", A, D, NOW - timedelta(days=2))]
    assert rollout == [
        ("w_2077_43", NOW - timedelta(days=10), NOW - timedelta(days=1), timedelta(days=9))
    ]
    assert [(node, tag, status) for node, tag, status, _, _ in failing] == [
        ("node1", "d_2077_10_23", "parked"),
        ("node2", "d_2077_10_23", "failed"),
    ]
    assert failing[1][3:] == (1, "ErrImagePull")
    assert at == [(D, NOW - timedelta(days=2))]
