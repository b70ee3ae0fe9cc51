"""The pure projection fold: tag history, presence (differences 10 and 11), counters, prepulls."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.events import DIGESTS, NODES, REGISTRY, T0, world_events
from worker.domain.events import (
    CachedImage,
    Event,
    NodeGone,
    NodeInventoryObserved,
    NodeSeen,
    PrepullFailed,
    PrepullParked,
    PrepullRequested,
    PrepullSucceeded,
    PrepullUnparked,
    TagDiscovered,
    TagMoved,
    TagRemoved,
    TagResolved,
)
from worker.domain.field_rules import FOLD_SKEW
from worker.domain.ledger import as_folded, evolve, fold
from worker.domain.nodes import Taint
from worker.domain.projection import LedgerState, NodeImageRow

REPO = "lsst/sciplat"
A, B, C = DIGESTS[:3]


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def inventory(
    node: str,
    minutes: int,
    appeared: tuple[str, ...] = (),
    disappeared: tuple[str, ...] = (),
    truncated: bool = False,
) -> NodeInventoryObserved:
    return NodeInventoryObserved(
        node=node,
        appeared=tuple(CachedImage(d, 100) for d in appeared),
        disappeared=disappeared,
        truncated=truncated,
        image_count=50 if truncated else len(appeared),
        occurred_at=at(minutes),
    )


def present(state: LedgerState) -> set[tuple[str, str]]:
    return {key for key, row in state.node_images.items() if row.present}


def test_tag_history_intervals() -> None:
    events: list[Event] = [
        TagDiscovered(registry=REGISTRY, repository=REPO, tag="t", digest=None, occurred_at=at(0)),
        TagResolved(registry=REGISTRY, repository=REPO, tag="t", digest=A, occurred_at=at(1)),
        TagMoved(
            registry=REGISTRY,
            repository=REPO,
            tag="t",
            old_digest=A,
            new_digest=B,
            occurred_at=at(2),
        ),
        TagRemoved(registry=REGISTRY, repository=REPO, tag="t", last_digest=B, occurred_at=at(3)),
        TagDiscovered(registry=REGISTRY, repository=REPO, tag="t", digest=A, occurred_at=at(4)),
    ]
    state = fold(events)
    row = state.tags[(REGISTRY, REPO, "t")]
    assert (row.digest, row.first_seen_at, row.removed_at, row.history_seq) == (A, at(0), None, 4)
    history = [(i.digest, i.valid_from, i.valid_until) for i in state.tag_history.values()]
    assert sorted(history, key=lambda h: h[1]) == [
        (None, at(0), at(1)),
        (A, at(1), at(2)),
        (B, at(2), at(3)),
        (A, at(4), None),
    ]


def test_an_unchanged_digest_changes_nothing() -> None:
    first = TagDiscovered(registry=REGISTRY, repository=REPO, tag="t", digest=A, occurred_at=at(0))
    again = TagDiscovered(registry=REGISTRY, repository=REPO, tag="t", digest=A, occurred_at=at(5))
    assert fold([first, again]) == fold([first])


def test_difference_10_a_truncated_list_never_marks_an_image_gone() -> None:
    state = fold(
        [
            inventory("n1", 0, appeared=(A, B)),
            inventory("n1", 1, disappeared=(A, B), truncated=True),
        ]
    )
    assert present(state) == {("n1", A), ("n1", B)}
    assert state.nodes["n1"].truncated is True
    assert state.nodes["n1"].last_complete_at == at(0)
    assert state.nodes["n1"].last_inventory_at == at(1)


def test_difference_11_newest_observation_wins_in_any_arrival_order() -> None:
    facts: list[Event] = [
        inventory("n1", 1, appeared=(A,)),
        inventory("n1", 3, disappeared=(A,)),
        inventory("n1", 2, appeared=(A, B)),
        PrepullSucceeded(
            registry=REGISTRY, repository=REPO, digest=B, node="n1", occurred_at=at(4)
        ),
        inventory("n1", 0, disappeared=(B,)),
        inventory("n1", 5, appeared=(C,), disappeared=(B,), truncated=True),
    ]
    outcomes = set()
    for order in itertools.permutations(facts):
        state = fold(order)
        rows = state.node_images
        outcomes.add(
            tuple(sorted((k, r.present, r.observed_at, r.source) for k, r in rows.items()))
        )
    assert outcomes == {
        (
            (("n1", A), False, at(3), "inventory"),
            (("n1", B), True, at(4), "prepull"),
            (("n1", C), True, at(5), "inventory"),
        )
    }


@st.composite
def presence_facts(draw: st.DrawFn) -> list[Event]:
    """Explicit observations of (node, digest) pairs at distinct times per pair."""
    events: list[Event] = []
    for node, digest in itertools.product(NODES[:2], DIGESTS[:3]):
        times = draw(st.lists(st.integers(0, 30), unique=True, max_size=4))
        for minutes in times:
            kind = draw(st.sampled_from(["appeared", "disappeared", "truncated", "prepull"]))
            if kind == "prepull":
                events.append(
                    PrepullSucceeded(
                        registry=REGISTRY,
                        repository=REPO,
                        digest=digest,
                        node=node,
                        occurred_at=at(minutes),
                    )
                )
            elif kind == "appeared":
                events.append(inventory(node, minutes, appeared=(digest,)))
            else:
                events.append(
                    inventory(node, minutes, disappeared=(digest,), truncated=kind == "truncated")
                )
    return draw(st.permutations(events))


@settings(max_examples=150, deadline=None)
@given(presence_facts(), st.randoms())
def test_difference_11_presence_is_independent_of_arrival_order(
    events: list[Event], random: Random
) -> None:
    shuffled = list(events)
    random.shuffle(shuffled)
    assert present(fold(events)) == present(fold(shuffled))


def _recount(state: LedgerState) -> dict[str, int]:
    counts: dict[str, int] = {}
    for (node, digest), row in state.node_images.items():
        owner = state.nodes.get(node)
        if row.present and owner is not None and owner.active:
            counts[digest] = counts.get(digest, 0) + 1
    return counts


@settings(max_examples=200, deadline=None)
@given(world_events(60))
def test_presence_counters_equal_a_recount(events: list[Event]) -> None:
    state = fold(events)
    counted = {d: r.eligible_nodes for d, r in state.presence_counts.items() if r.eligible_nodes}
    assert counted == _recount(state)


@settings(max_examples=100, deadline=None)
@given(world_events(30), world_events(10))
def test_evolve_is_pure_and_agrees_with_fold(head: list[Event], tail: list[Event]) -> None:
    state = fold(head)
    before = state.copy()
    stepped = state
    for event in tail:
        stepped = evolve(stepped, event)
    assert state == before
    assert stepped == fold(head + tail) == fold(tail, state)


def test_eligibility_changes_move_the_counters() -> None:
    seen = NodeSeen(node="n1", eligible=True, occurred_at=at(0))
    state = fold([inventory("n1", 1, appeared=(A, B)), seen])
    assert {d: r.eligible_nodes for d, r in state.presence_counts.items()} == {A: 1, B: 1}
    tainted = NodeSeen(node="n1", eligible=False, comment="tainted", occurred_at=at(2))
    stale = NodeSeen(node="n1", eligible=True, occurred_at=at(1))
    state = fold([tainted, stale], state)
    assert state.nodes["n1"].comment == "tainted"
    assert state.presence_counts == {}  # a count of zero is no row, as after a rebuild
    state = fold(
        [
            NodeSeen(node="n1", eligible=True, occurred_at=at(3)),
            NodeGone(node="n1", occurred_at=at(4)),
        ],
        state,
    )
    assert state.nodes["n1"].gone_at == at(4)
    assert A not in state.presence_counts


def test_prepull_attempts_count_and_park() -> None:
    common: dict[str, Any] = {"registry": REGISTRY, "repository": REPO, "digest": A, "node": "n1"}
    events: list[Event] = [
        PrepullRequested(tag="w", attempt=1, occurred_at=at(0), **common),
        PrepullFailed(reason="timeout", occurred_at=at(1), **common),
        PrepullRequested(tag="w", attempt=2, occurred_at=at(2), **common),
        PrepullFailed(reason="ErrImagePull", occurred_at=at(3), **common),
        PrepullParked(failures=2, reason="2 consecutive failures", occurred_at=at(4), **common),
    ]
    row = fold(events).node_images[("n1", A)]
    assert (row.prepull_state, row.prepull_requests, row.prepull_failures) == ("parked", 2, 2)
    assert row.present is None
    events += [
        PrepullUnparked(reason="operator", occurred_at=at(5), **common),
        PrepullRequested(tag="w", attempt=3, occurred_at=at(6), **common),
        PrepullSucceeded(tag="w", occurred_at=at(7), **common),
    ]
    row = fold(events).node_images[("n1", A)]
    assert row == NodeImageRow(
        "n1", A, present=True, observed_at=at(7), source="prepull", present_since=at(7),
        prepull_state="succeeded", prepull_requests=3, prepull_failures=0,
        prepull_failures_total=2, prepull_requested_at=at(6), prepull_finished_at=at(7),
        registry=REGISTRY, repository=REPO, tag="w",
    )  # fmt: skip


FAR_AHEAD = datetime(9999, 1, 1, tzinfo=UTC)


def test_a_far_future_observation_counts_at_its_recording_plus_the_skew() -> None:
    """Issue 12, fault 1: one inventory dated 9999 with a NoSchedule taint, as a log written
    before the edge refused such times holds it, then a real one ten minutes later."""
    gpu = (Taint("gpu", "NoSchedule", "true"),)
    pinned: list[Event] = [
        NodeSeen(node="n1", taints=gpu, eligible=False, comment="tainted", occurred_at=FAR_AHEAD),
        NodeInventoryObserved(
            node="n1", appeared=(CachedImage(A, 100),), image_count=1, occurred_at=FAR_AHEAD
        ),
    ]
    real: list[Event] = [
        NodeSeen(node="n1", eligible=True, occurred_at=at(10)),
        inventory("n1", 10, disappeared=(A,)),
    ]
    # Counted as they say, the far one wins for ever: the attack.
    assert fold(pinned + real).nodes["n1"].taints == gpu
    # Counted at no later than their recording plus the skew, the real one wins.
    state = fold([as_folded(e, at(0)) for e in pinned] + [as_folded(e, at(10)) for e in real])
    node = state.nodes["n1"]
    assert (node.eligible, node.taints, node.comment, node.seen_at) == (True, (), None, at(10))
    assert node.last_inventory_at == at(10)
    assert present(state) == set()
    # Until then the far one stands, and every time it sets is its recording plus the skew.
    alone = fold(as_folded(e, at(0)) for e in pinned)
    pinned_until = at(0) + FOLD_SKEW
    node = alone.nodes["n1"]
    assert (node.eligible, node.taints, node.seen_at) == (False, gpu, pinned_until)
    assert (node.first_seen_at, node.last_inventory_at) == (pinned_until, pinned_until)
    assert alone.node_images[("n1", A)].observed_at == pinned_until
    early = NodeSeen(node="n1", eligible=True, occurred_at=at(3))  # before at(0) + FOLD_SKEW
    assert fold([as_folded(early, at(3))], alone).nodes["n1"].taints == gpu


def test_as_folded_moves_only_node_and_prepull_times_past_the_skew() -> None:
    common: dict[str, Any] = {"registry": REGISTRY, "repository": REPO, "digest": A, "node": "n1"}
    failed = PrepullFailed(reason="ErrImagePull", occurred_at=FAR_AHEAD, **common)
    assert as_folded(failed, at(0)) == PrepullFailed(
        reason="ErrImagePull", occurred_at=at(0) + FOLD_SKEW, **common
    )
    within = NodeGone(node="n1", occurred_at=at(0) + FOLD_SKEW)
    assert as_folded(within, at(0)) is within
    tag = TagRemoved(
        registry=REGISTRY, repository=REPO, tag="t", last_digest=A, occurred_at=FAR_AHEAD
    )
    assert as_folded(tag, at(0)) is tag  # the worker's own clock: repository events stay
