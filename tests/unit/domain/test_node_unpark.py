"""Auto-unpark: a change of a node's labels or taints unparks its parked prepulls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from worker.domain.events import PrepullUnparked
from worker.domain.messages import NodeInventory
from worker.domain.node_observation import (
    NodeChange,
    NodeRules,
    decide_node,
    unpark_on_change,
)
from worker.domain.nodes import Taint
from worker.domain.prepull import PairState

AT = datetime(2077, 11, 1, tzinfo=UTC)
RULES = NodeRules()
A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def inventory(at: datetime, **kw: object) -> NodeInventory:
    kw.setdefault("labels", {"pool": "lab"})
    return NodeInventory(node="n1", observed_at=at, **kw)  # type: ignore[arg-type]


def parked(node: str, digest: str, **kw: object) -> PairState:
    kw.setdefault("state", "parked")
    return PairState(node, digest, registry="reg.test", repository="lab", tag="w", **kw)  # type: ignore[arg-type]


def change_after(later: NodeInventory) -> NodeChange | None:
    first = decide_node(None, inventory(AT), "m1", RULES)
    return decide_node(first.node, later, "m2", RULES).change


def test_a_first_sighting_is_no_change() -> None:
    assert decide_node(None, inventory(AT), "m1", RULES).change is None


def test_the_same_labels_and_taints_are_no_change() -> None:
    assert change_after(inventory(AT + timedelta(1))) is None


def test_changed_labels_or_taints_are_a_change() -> None:
    labels = change_after(inventory(AT + timedelta(1), labels={"pool": "gpu"}))
    assert labels == NodeChange("n1", "m2", AT + timedelta(1), "node labels changed")
    taint = (Taint("maintenance", "NoSchedule"),)
    both = change_after(inventory(AT + timedelta(1), labels={}, taints=taint))
    assert both is not None
    assert both.reason == "node labels and taints changed"


def test_an_older_observation_changes_nothing() -> None:
    assert change_after(inventory(AT - timedelta(1), labels={"pool": "gpu"})) is None


def test_parked_pairs_of_a_changed_node_are_unparked_once_keyed_by_the_message() -> None:
    changes = [
        NodeChange("n1", "m2", AT, "node taints changed"),
        NodeChange("n1", "m3", AT + timedelta(1), "node labels changed"),
    ]
    pairs = [
        parked("n1", B),
        parked("n1", A),
        parked("n2", A),  # another node: left alone
        parked("n1", "sha256:" + "c" * 64, state="failed"),  # not parked: left alone
    ]
    facts = unpark_on_change(changes, pairs)
    assert [f.key for f in facts] == [f"m2:prepull.unparked:{A}", f"m2:prepull.unparked:{B}"]
    assert facts[0].causation == "m2"
    assert facts[0].event == PrepullUnparked(
        registry="reg.test",
        repository="lab",
        digest=A,
        node="n1",
        reason="node taints changed",
        occurred_at=AT,
    )


def test_nothing_to_unpark_without_a_change() -> None:
    assert unpark_on_change([], [parked("n1", A)]) == []
