"""Node inventory decisions: NodeSeen on change, inventory changes only, truncated lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from worker.domain.events import NodeGone, NodeInventoryObserved, NodeSeen
from worker.domain.inventory import Presence
from worker.domain.messages import NodeGoneMessage, NodeInventory
from worker.domain.node_observation import (
    OUTSIDE_SELECTOR,
    KnownNode,
    NodeRules,
    decide_gone,
    decide_node,
)
from worker.domain.nodes import KubeletImage, Taint, Toleration

AT = datetime(2077, 11, 1, tzinfo=UTC)
RULES = NodeRules(node_selector={"pool": "lab"}, tolerations=(Toleration("gpu", "Exists"),))


def image(digest: str, size: int = 10) -> KubeletImage:
    return KubeletImage((f"reg.test/lab@{digest}", "reg.test/lab:tag"), size)


def inventory(*digests: str, at: datetime = AT, **kw: object) -> NodeInventory:
    kw.setdefault("labels", {"pool": "lab"})
    return NodeInventory(
        node="n1",
        observed_at=at,
        images=tuple(image(d) for d in digests),
        **kw,  # type: ignore[arg-type]
    )


def test_first_inventory_records_node_and_images_with_message_keys() -> None:
    decision = decide_node(None, inventory("sha256:a", "sha256:b"), "m1", RULES)
    seen, observed = (f.event for f in decision.facts)
    assert isinstance(seen, NodeSeen)
    assert seen.eligible
    assert isinstance(observed, NodeInventoryObserved)
    assert [c.digest for c in observed.appeared] == ["sha256:a", "sha256:b"]
    assert [f.key for f in decision.facts] == ["m1:node.seen", "m1:node.inventory_observed"]
    assert decision.facts[0].causation == "m1"


def test_unchanged_observation_adds_nothing() -> None:
    first = decide_node(None, inventory("sha256:a"), "m1", RULES)
    again = decide_node(first.node, inventory("sha256:a", at=AT + timedelta(1)), "m2", RULES)
    assert again.facts == ()


def test_changes_only_and_eligibility_change() -> None:
    first = decide_node(None, inventory("sha256:a"), "m1", RULES)
    taint = Taint("maintenance", "NoSchedule")
    later = inventory("sha256:b", at=AT + timedelta(1), taints=(taint,))
    decision = decide_node(first.node, later, "m2", RULES)
    seen, observed = (f.event for f in decision.facts)
    assert isinstance(seen, NodeSeen)
    assert not seen.eligible
    assert seen.comment == "Node is tainted (NoSchedule, maintenance)"
    assert isinstance(observed, NodeInventoryObserved)
    assert [c.digest for c in observed.appeared] == ["sha256:b"]
    assert observed.disappeared == ("sha256:a",)


def test_tolerated_taints_keep_eligibility() -> None:
    decision = decide_node(None, inventory(taints=(Taint("gpu", "NoSchedule"),)), "m", RULES)
    assert decision.facts[0].event.eligible  # type: ignore[union-attr]


def test_outside_selector_is_recorded_ineligible_with_reason() -> None:
    decision = decide_node(None, inventory(labels={"pool": "batch"}), "m", RULES)
    seen, observed = (f.event for f in decision.facts)
    assert isinstance(observed, NodeInventoryObserved)  # its (empty) first list is a report
    assert isinstance(seen, NodeSeen)
    assert not seen.eligible
    assert seen.comment == OUTSIDE_SELECTOR


def test_truncated_list_never_marks_absence() -> None:
    known = KnownNode(
        "n1",
        {"pool": "lab"},
        eligible=True,
        seen_at=AT,
        presence={"sha256:old": Presence(True, AT)},
    )
    digests = [f"sha256:{i:02d}" for i in range(3)]
    decision = decide_node(
        known, inventory(*digests, at=AT + timedelta(1)), "m", NodeRules({"pool": "lab"}, (), 3)
    )
    (observed,) = (f.event for f in decision.facts)
    assert isinstance(observed, NodeInventoryObserved)
    assert observed.truncated
    assert observed.disappeared == ()


def test_older_observation_does_not_overturn_labels_or_presence() -> None:
    newer = decide_node(None, inventory("sha256:a", at=AT + timedelta(hours=1)), "m1", RULES)
    old = inventory(at=AT, labels={"pool": "lab", "x": "y"})
    assert decide_node(newer.node, old, "m0", RULES).facts == ()


def test_a_list_older_than_the_newest_complete_list_changes_nothing() -> None:
    # A complete list at T+1h holds only a; a late list from T reports b (never seen) and
    # omits a: the newer complete list already said what the node held, so nothing changes.
    newer = decide_node(None, inventory("sha256:a", at=AT + timedelta(hours=1)), "m1", RULES)
    assert newer.node.complete_at == AT + timedelta(hours=1)
    late = decide_node(newer.node, inventory("sha256:b", at=AT), "m0", RULES)
    assert late.facts == ()
    stored = KnownNode("n1", {"pool": "lab"}, eligible=True, seen_at=AT, complete_at=AT)
    assert decide_node(stored, inventory("sha256:b", at=AT - timedelta(1)), "m2", RULES).facts == ()
    fresh = decide_node(stored, inventory("sha256:b", at=AT + timedelta(1)), "m3", RULES)
    assert [type(f.event).__name__ for f in fresh.facts] == ["NodeInventoryObserved"]


def test_a_truncated_list_does_not_move_the_complete_time() -> None:
    full = [f"sha256:{i:02d}" for i in range(RULES.max_images)]
    truncated = decide_node(None, inventory(*full, at=AT), "m1", RULES)
    assert truncated.node.complete_at is None
    late = decide_node(truncated.node, inventory("sha256:zz", at=AT - timedelta(1)), "m0", RULES)
    assert late.facts  # no complete list recorded yet: the late list is news


def test_a_deleted_node_is_gone_and_a_later_inventory_brings_it_back() -> None:
    first = decide_node(None, inventory("sha256:a"), "m1", RULES)
    gone = decide_gone(first.node, NodeGoneMessage("n1", AT + timedelta(1)), "g1")
    (fact,) = gone.facts
    assert fact.event == NodeGone(node="n1", occurred_at=AT + timedelta(1))
    assert (fact.key, fact.causation) == ("g1:node.gone", "g1")
    assert gone.node.gone
    assert decide_gone(gone.node, NodeGoneMessage("n1", AT + timedelta(2)), "g2").facts == ()
    stale = decide_node(gone.node, inventory("sha256:a"), "m0", RULES)
    assert not [f for f in stale.facts if isinstance(f.event, NodeSeen)]
    back = decide_node(gone.node, inventory("sha256:a", at=AT + timedelta(3)), "m3", RULES)
    assert isinstance(back.facts[0].event, NodeSeen)
    assert not back.node.gone


def test_a_deletion_older_than_the_newest_observation_or_of_an_unknown_node_adds_nothing() -> None:
    seen = decide_node(None, inventory("sha256:a", at=AT + timedelta(5)), "m1", RULES)
    assert decide_gone(seen.node, NodeGoneMessage("n1", AT), "g1").facts == ()
    assert decide_gone(None, NodeGoneMessage("n1", AT), "g2").facts == ()


def test_a_first_empty_kubelet_list_is_a_report_and_a_second_adds_nothing() -> None:
    first = decide_node(None, inventory(), "m1", RULES)
    observed = [f.event for f in first.facts if isinstance(f.event, NodeInventoryObserved)]
    assert len(observed) == 1
    assert (observed[0].appeared, observed[0].disappeared, observed[0].image_count) == ((), (), 0)
    assert first.node.complete_at == AT
    again = decide_node(first.node, inventory(at=AT + timedelta(1)), "m2", RULES)
    assert again.facts == ()
