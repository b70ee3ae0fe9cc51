"""The pure answer of ``imageledger explain``: targets and policy, node, presence, prepulls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from attrs import evolve

from worker.domain.events import PrepullFailed, PrepullParked, PrepullUnparked, TagDiscovered
from worker.domain.explain import (
    Attempt,
    ExplainInput,
    Explanation,
    ImageQuery,
    attempt_of,
    explain,
    parse_image_query,
)
from worker.domain.nodes import Taint, Toleration
from worker.domain.policy import PrepullPolicy
from worker.domain.prepull import PairState, PrepullSettings
from worker.domain.projection import NodeImageRow, NodeRow
from worker.domain.references import InvalidReferenceError
from worker.domain.targets import NewerTag, TagFacts, TargetRow, policy_reasons

NOW = datetime(2077, 1, 1, 12, tzinfo=UTC)
A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
WEEKLY = TagFacts("registry.test", "lsst/sciplat", "w_2077_43", A, "Weekly", "Weekly",
                  "Weekly 2077_43", aliases=("recommended",))  # fmt: skip
TARGET = TargetRow("w_2077_43", A, "Weekly 2077_43", "Weekly", True)
POLICY = PrepullPolicy(num_weeklies=2, pin=("exp_special",))
NODE = NodeRow("node1", NOW - timedelta(days=1), labels={"pool": "lab"}, eligible=True,
               last_inventory_at=NOW - timedelta(hours=1))  # fmt: skip
SETTINGS = PrepullSettings(max_attempts=3, backoff=timedelta(minutes=10))


def facts(**changes: Any) -> ExplainInput:
    base = ExplainInput(
        image=WEEKLY,
        node_name="node1",
        now=NOW,
        settings=SETTINGS,
        targets=(TARGET,),
        policy=POLICY,
        node_selector={"pool": "lab"},
        node=NODE,
    )
    return evolve(base, **changes)


def pair(**changes: Any) -> NodeImageRow:
    return evolve(NodeImageRow("node1", A), **changes)


def lines(answer: Explanation, topic: str) -> list[tuple[bool | None, str]]:
    return [(f.ok, f.text) for f in answer.findings if f.topic == topic]


def test_image_names_are_tags_references_or_digests() -> None:
    assert parse_image_query("w_2077_43") == ImageQuery(tag="w_2077_43")
    assert parse_image_query(A) == ImageQuery(digest=A)
    assert parse_image_query("registry.test/lsst/sciplat:w_2077_43") == ImageQuery(
        "w_2077_43", None, "registry.test", "lsst/sciplat"
    )
    query = parse_image_query(f"registry.test:5000/lsst/sciplat@{A}")
    assert (query.tag, query.digest, query.registry) == (None, A, "registry.test:5000")
    assert str(query) == f"registry.test:5000/lsst/sciplat@{A}"
    for bad in ("bad tag!", "nope:x", "registry.test/lsst/sciplat", "-x"):
        with pytest.raises(InvalidReferenceError):
            parse_image_query(bad)


def test_a_target_absent_from_an_eligible_node_is_planned() -> None:
    answer = explain(facts())
    assert (answer.verdict, answer.target, answer.pulled_as) == ("planned", True, "w_2077_43")
    assert lines(answer, "target") == [
        (True, "a prepull target: prepull pods pull this tag"),
        (True, "policy: it is the newest weekly (images.numWeeklies: 2)"),
    ]
    assert lines(answer, "node") == [
        (True, "node matches the node selector (pool=lab)"),
        (True, "node is eligible for lab pods and prepulls"),
    ]
    assert lines(answer, "presence") == [(None, "no observation of this digest on the node")]
    assert answer.image == f"registry.test/lsst/sciplat:w_2077_43@{A}"


def test_the_policy_reasons() -> None:
    older = evolve(WEEKLY, tag="w_2077_40")
    newer = (NewerTag("w_2077_43"), NewerTag("w_2077_42-arm64", "arm64"), NewerTag("w_2077_41"))
    assert policy_reasons(older, POLICY, newer) == [
        (False, "it is number 3 of the weeklies: only the newest 2 are prepulled"
                " (images.numWeeklies: 2; newest: w_2077_43, w_2077_41)"),
    ]  # fmt: skip
    second = policy_reasons(older, POLICY, newer[:1])
    assert second == [(True, "it is number 2 of the newest 2 weeklies (images.numWeeklies: 2)")]
    pinned = evolve(WEEKLY, tag="exp_special", parsed_type="Experimental")
    assert policy_reasons(pinned, POLICY) == [(True, "it is pinned (images.pin)")]
    candidate = evolve(WEEKLY, tag="r22_0_0_rc1", parsed_type="Release Candidate")
    assert policy_reasons(candidate, POLICY) == [
        (False, "Release Candidate images are prepulled only when recommended or pinned")
    ]
    arch = evolve(WEEKLY, architecture="amd64")
    assert policy_reasons(arch, POLICY) == [
        (False, "architecture-specific tags (-amd64) are never prepulled")
    ]
    cycle = policy_reasons(evolve(WEEKLY, cycle=40), evolve(POLICY, cycle=50))
    assert cycle == [
        (False, "only tags of SAL cycle 50 are kept (images.cycle); this one has cycle 40")
    ]
    assert policy_reasons(WEEKLY, None) == [
        (None, "no prepull policy recorded yet (a refresh records it)")
    ]


def test_not_a_target_and_an_alias_pulled_as_another_tag() -> None:
    older = evolve(WEEKLY, tag="w_2077_40", digest=B)
    answer = explain(facts(image=older, targets=(), newer=(NewerTag("a"), NewerTag("b"))))
    assert (answer.verdict, answer.summary) == (
        "not_planned", "not planned: the image is not a prepull target",
    )  # fmt: skip
    alias = TagFacts("registry.test", "lsst/sciplat", "recommended", A, "Alias", "Alias",
                     "Recommended (Weekly 2077_43)", alias_target="w_2077_43")  # fmt: skip
    answer = explain(facts(image=alias))
    assert answer.verdict == "planned"
    assert lines(answer, "target")[0] == (
        True, "not in the prepull set itself, but its digest is: pulled as w_2077_43"
        " (Weekly 2077_43)",
    )  # fmt: skip
    assert all("predates" not in text for _, text in lines(answer, "target"))
    unresolved = explain(
        facts(image=evolve(WEEKLY, digest=None), targets=(evolve(TARGET, digest=None),))
    )
    assert unresolved.summary == "not planned: the tag's digest is not known yet"


def test_a_stale_prepull_set_is_pointed_out() -> None:
    answer = explain(facts(targets=()))
    assert (None, "the stored prepull set predates this policy: a refresh updates it") in lines(
        answer, "target"
    )


def test_nodes_unknown_gone_unselected_and_tainted() -> None:
    unknown = explain(facts(node=None))
    assert (unknown.verdict, unknown.node_known) == ("not_planned", False)
    assert lines(unknown, "node") == [
        (False, "node node1 is not known: it never reported an inventory")
    ]
    assert lines(unknown, "prepull") == []
    gone = explain(facts(node=evolve(NODE, gone_at=NOW)))
    assert gone.summary == "not planned: the node left the cluster"
    outside = evolve(NODE, labels={"pool": "gpu"}, eligible=False,
                     comment="Node does not match the node selector")  # fmt: skip
    answer = explain(facts(node=outside))
    assert answer.node_selected is False
    assert lines(answer, "node")[0] == (False, "node does not match the node selector (pool=lab)")
    taints = (Taint("gpu", "NoSchedule", "true"), Taint("spot", "NoExecute"),
              Taint("soft", "PreferNoSchedule"))  # fmt: skip
    tainted = evolve(NODE, taints=taints, eligible=False,
                     comment="Node is tainted (NoExecute, spot)")  # fmt: skip
    answer = explain(facts(node=tainted, tolerations=(Toleration("gpu", "Exists"),)))
    assert lines(answer, "node") == [
        (True, "node matches the node selector (pool=lab)"),
        (True, "taint (NoSchedule, gpu = true) tolerated"),
        (False, "taint (NoExecute, spot) not tolerated"),
        (False, "node is not eligible: Node is tainted (NoExecute, spot)"),
    ]
    assert (
        answer.summary
        == "not planned: the node is not eligible (Node is tainted (NoExecute, spot))"
    )
    no_selector = explain(facts(node_selector={}))
    assert lines(no_selector, "node")[0] == (True, "no node selector: every node is selected")


def test_presence_sources_and_a_truncated_list() -> None:
    seen = pair(present=True, observed_at=NOW, source="prepull", present_since=NOW)
    answer = explain(facts(pair=seen))
    assert (answer.verdict, answer.present) == ("present", True)
    assert lines(answer, "presence") == [
        (True, f"digest is on the node: seen by a successful prepull pod at {NOW.isoformat()},"
               f" present since {NOW.isoformat()}"),
    ]  # fmt: skip
    gone = explain(facts(pair=pair(present=False, observed_at=NOW, source="inventory")))
    assert lines(gone, "presence")[0][0] is False
    truncated = evolve(NODE, truncated=True, image_count=50)
    text = lines(explain(facts(node=truncated)), "presence")[0][1]
    assert text.endswith("was truncated at 50 entries: it proves presence, not absence)")


def test_failures_back_off_parking_and_in_flight() -> None:
    failed_at = NOW - timedelta(minutes=5)
    failed = pair(prepull_state="failed", prepull_requests=2, prepull_failures=2,
                  prepull_failures_total=2, prepull_finished_at=failed_at,
                  prepull_reason="ErrImagePull")  # fmt: skip
    attempts = (Attempt(failed_at, "failed", "ErrImagePull"),)
    answer = explain(facts(pair=failed, attempts=attempts))
    retry = failed_at + timedelta(minutes=20)
    assert (answer.verdict, answer.next_retry_at) == ("waiting", retry)
    assert lines(answer, "prepull") == [
        (None, "2 prepull request(s), 2 failure(s) in all, 2 consecutive (parked after 3)"),
        (False, f"failed at {failed_at.isoformat()}: ErrImagePull"),
        (False, f"next retry after back-off: {retry.isoformat()}"),
    ]
    later = explain(facts(pair=failed, now=retry))
    assert later.verdict == "planned"
    third = evolve(failed, prepull_failures=3)
    assert explain(facts(pair=third, now=NOW + timedelta(hours=2))).summary == (
        "the next plan parks the pair: too many consecutive failures"
    )
    parked = explain(facts(pair=evolve(third, prepull_state="parked", prepull_reason="3 failures")))
    assert (parked.verdict, parked.parked) == ("parked", True)
    assert lines(parked, "prepull")[-1] == (
        False, "parked: 3 failures (`imageledger unpark` tries again)",
    )  # fmt: skip
    flying = pair(prepull_state="requested", prepull_requests=1, prepull_requested_at=NOW,
                  prepull_deadline=NOW - timedelta(seconds=1))  # fmt: skip
    answer = explain(facts(pair=flying))
    assert answer.verdict == "in_flight"
    assert lines(answer, "prepull")[-1][1].endswith("(overdue)")


def test_the_in_flight_caps_hold_a_pair_back() -> None:
    busy = PairState("node1", B, state="requested", requests=1, deadline=NOW + timedelta(hours=1))
    held = explain(facts(in_flight_on_node=(busy,)))
    assert (
        held.summary == "waiting: the node or the cluster has as many prepulls in flight as allowed"
    )
    assert explain(facts(in_flight_total=100)).verdict == "waiting"
    overdue = evolve(busy, deadline=NOW - timedelta(minutes=1))
    assert explain(facts(in_flight_on_node=(overdue,))).verdict == "planned"


def test_attempts_from_events() -> None:
    common: dict[str, Any] = {"registry": "r", "repository": "p", "digest": A, "node": "n",
                              "occurred_at": NOW}  # fmt: skip
    assert attempt_of(PrepullFailed(reason="boom", **common)) == Attempt(NOW, "failed", "boom")
    assert attempt_of(PrepullParked(failures=3, reason="3", **common)).kind == "parked"  # type: ignore[union-attr]
    assert attempt_of(PrepullUnparked(reason="op", **common)) == Attempt(NOW, "unparked", "op")
    discovered = TagDiscovered(registry="r", repository="p", tag="t", digest=A, occurred_at=NOW)
    assert attempt_of(discovered) is None
