"""Pure rules behind ``history`` and ``unpark``: tag changes, node changes, unpark facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from worker.domain.events import (
    CachedImage,
    Event,
    NodeGone,
    NodeInventoryObserved,
    NodeSeen,
    PrepullSucceeded,
    PrepullUnparked,
    TagDiscovered,
)
from worker.domain.history import NodeHistoryEntry, TagChange, node_changes, tag_changes
from worker.domain.projection import TagInterval
from worker.domain.unpark import ParkedPair, unpark_facts

T = datetime(2077, 1, 1, tzinfo=UTC)
A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
WHERE = ("registry.test", "lsst/sciplat", "latest")


def at(minutes: int) -> datetime:
    return T + timedelta(minutes=minutes)


def stretch(seq: int, digest: str | None, start: int, end: int | None) -> TagInterval:
    return TagInterval(*WHERE, seq, digest, at(start), at(end) if end is not None else None)


def test_stretches_become_discovery_resolution_moves_and_removals() -> None:
    stretches = [
        stretch(3, A, 20, 30),
        stretch(1, None, 0, 5),
        stretch(2, B, 5, 20),
        stretch(4, A, 40, None),
    ]
    assert tag_changes(stretches) == [
        TagChange(*WHERE, at(0), "discovered", None),
        TagChange(*WHERE, at(5), "resolved", B),
        TagChange(*WHERE, at(20), "moved", A, B),
        TagChange(*WHERE, at(30), "removed", A),
        TagChange(*WHERE, at(40), "discovered", A),
    ]


def test_a_removal_and_rediscovery_at_the_same_moment() -> None:
    same_digest = tag_changes([stretch(1, A, 0, 10), stretch(2, A, 10, None)])
    assert [(c.change, c.at) for c in same_digest] == [
        ("discovered", at(0)),
        ("removed", at(10)),
        ("discovered", at(10)),
    ]
    unresolved = tag_changes([stretch(1, A, 0, 10), stretch(2, None, 10, None)])
    assert [c.change for c in unresolved] == ["discovered", "removed", "discovered"]


def test_tags_of_two_repositories_are_kept_apart() -> None:
    other = TagInterval("registry.test", "lsst/other", "latest", 1, B, at(2), None)
    changes = tag_changes([stretch(1, A, 0, None), other])
    assert [(c.repository, c.change, c.digest) for c in changes] == [
        ("lsst/sciplat", "discovered", A),
        ("lsst/other", "discovered", B),
    ]


def test_node_events_become_appear_and_disappear_rows() -> None:
    events: list[Event] = [
        NodeInventoryObserved(node="n", appeared=(CachedImage(A, 1),), disappeared=(B,),
                              image_count=50, truncated=True, occurred_at=at(10)),
        NodeSeen(node="n", eligible=False, comment="Node is tainted (NoSchedule, gpu)",
                 occurred_at=at(0)),
        NodeInventoryObserved(node="n", disappeared=(A,), image_count=3, occurred_at=at(20)),
        PrepullSucceeded(registry="r", repository="p", digest=B, node="n", pod="pull-1",
                         occurred_at=at(15)),
        NodeGone(node="n", occurred_at=at(30)),
    ]  # fmt: skip
    assert node_changes(events) == [
        NodeHistoryEntry(
            at(0), "seen", None, "node", "not eligible: Node is tainted (NoSchedule, gpu)"
        ),
        NodeHistoryEntry(at(10), "appeared", A, "inventory", "truncated list of 50"),
        NodeHistoryEntry(at(15), "appeared", B, "prepull", "pod pull-1"),
        NodeHistoryEntry(at(20), "disappeared", A, "inventory"),
        NodeHistoryEntry(at(30), "gone", None, "node"),
    ]
    assert node_changes([TagDiscovered(registry="r", repository="p", tag="t", digest=A,
                                       occurred_at=T)]) == []  # fmt: skip


def test_unpark_facts_are_keyed_by_the_park_they_undo() -> None:
    pairs = [
        ParkedPair("registry.test", "lsst/sciplat", "node2", A, "w_2077_43", 5, "5 failures", 41),
        ParkedPair("registry.test", "lsst/sciplat", "node3", A, None, 5, "5 failures", 44),
    ]
    facts = unpark_facts(pairs, "registry fixed", T)
    assert [f.key for f in facts] == [
        f"prepull.unparked:node2:{A}:41",
        f"prepull.unparked:node3:{A}:44",
    ]
    assert facts[0].event == PrepullUnparked(
        registry="registry.test", repository="lsst/sciplat", digest=A, node="node2",
        reason="registry fixed", occurred_at=T,
    )  # fmt: skip
    assert [f.key for f in unpark_facts(pairs, "again", at(5))] == [f.key for f in facts]
