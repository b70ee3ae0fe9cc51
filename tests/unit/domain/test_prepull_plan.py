"""The prepull planner: caps, ordering, back-off, timeouts, parking, ineligible nodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from worker.domain.events import PrepullFailed, PrepullParked, PrepullRequested
from worker.domain.prepull import (
    PairState,
    PlanInput,
    PrepullSettings,
    PrepullTarget,
    backoff_delay,
    complete_message_id,
    full_snapshot,
    plan_prepulls,
    request_message_id,
)

NOW = datetime(2077, 11, 1, 12, tzinfo=UTC)
REG, REPO = "registry.test", "lsstsqre/sciplat-lab"


def target(tag: str, position: int, digest: str | None = None) -> PrepullTarget:
    return PrepullTarget(REG, REPO, tag, digest or f"sha256:{tag}", position)


RECOMMENDED = target("recommended", 0, "sha256:w1")
WEEKLY = target("w_2077_43", 1, "sha256:w1")
WEEKLY_OLD = target("w_2077_42", 2)
DAILY = target("d_2077_10_23", 3)
TARGETS = (DAILY, WEEKLY_OLD, RECOMMENDED, WEEKLY)


def snapshot(nodes: tuple[str, ...], *pairs: PairState) -> PlanInput:
    return full_snapshot(TARGETS, nodes, {(p.node, p.digest): p for p in pairs})


def pairs_of(plan: object) -> list[tuple[str, str]]:
    return [(r.node, r.target.tag) for r in plan.requests]  # type: ignore[attr-defined]


def test_one_request_per_node_in_display_order_one_per_digest() -> None:
    plan = plan_prepulls(snapshot(("b", "a")), PrepullSettings(), NOW)
    assert pairs_of(plan) == [("a", "recommended"), ("b", "recommended")]
    assert all(isinstance(f.event, PrepullRequested) for f in plan.facts)
    assert [r.deadline for r in plan.requests] == [NOW + timedelta(minutes=10)] * 2
    assert plan.requests[0].message_id == request_message_id("sha256:w1", "a", 1)


def test_caps_per_node_and_total() -> None:
    settings = PrepullSettings(in_flight_per_node=2, in_flight_total=3)
    plan = plan_prepulls(snapshot(("a", "b")), settings, NOW)
    assert pairs_of(plan) == [("a", "recommended"), ("b", "recommended"), ("a", "w_2077_42")]


def test_in_flight_requests_count_against_the_caps() -> None:
    busy = PairState("a", "sha256:w1", state="requested", requests=1, deadline=NOW + timedelta(1))
    plan = plan_prepulls(snapshot(("a", "b"), busy), PrepullSettings(), NOW)
    assert pairs_of(plan) == [("b", "recommended")]


def test_present_images_are_skipped_and_next_target_follows() -> None:
    have = PairState("a", "sha256:w1", present=True)
    plan = plan_prepulls(snapshot(("a",), have), PrepullSettings(), NOW)
    assert pairs_of(plan) == [("a", "w_2077_42")]


def test_ineligible_nodes_get_nothing() -> None:
    plan = plan_prepulls(snapshot(()), PrepullSettings(), NOW)
    assert plan.requests == ()
    assert plan.facts == ()
    assert plan.complete == ()


def test_timeout_counts_as_failure_then_backs_off() -> None:
    late = PairState(
        "a", "sha256:w1", state="requested", requests=1, deadline=NOW - timedelta(seconds=1)
    )
    plan = plan_prepulls(snapshot(("a",), late), PrepullSettings(), NOW)
    failed = [f for f in plan.facts if isinstance(f.event, PrepullFailed)]
    assert len(failed) == 1
    assert isinstance(failed[0].event, PrepullFailed)
    assert failed[0].event.reason.startswith("timeout")
    assert failed[0].key == "prepull.timeout:a:sha256:w1:1"
    assert plan.timeouts == 1
    # the node is free again, but the timed-out pair waits for its back-off
    assert pairs_of(plan) == [("a", "w_2077_42")]


def test_failed_pair_retries_after_exponential_backoff() -> None:
    settings = PrepullSettings(backoff=timedelta(minutes=1))
    assert backoff_delay(1, settings) == timedelta(minutes=1)
    assert backoff_delay(3, settings) == timedelta(minutes=4)
    assert backoff_delay(40, settings) == settings.max_backoff
    failed = PairState("a", "sha256:w1", state="failed", requests=2, failures=2, finished_at=NOW)
    early = plan_prepulls(
        full_snapshot((RECOMMENDED,), ("a",), {("a", "sha256:w1"): failed}),
        settings,
        NOW + timedelta(seconds=119),
    )
    assert early.requests == ()
    ready = plan_prepulls(
        full_snapshot((RECOMMENDED,), ("a",), {("a", "sha256:w1"): failed}),
        settings,
        NOW + timedelta(minutes=2),
    )
    assert [(r.attempt, r.request_number) for r in ready.requests] == [(3, 3)]


def test_max_attempts_parks_the_pair_and_parked_pairs_get_nothing() -> None:
    settings = PrepullSettings(max_attempts=3)
    failed = PairState("a", "sha256:w1", state="failed", requests=3, failures=3, finished_at=NOW)
    plan = plan_prepulls(
        full_snapshot((RECOMMENDED,), ("a",), {("a", "sha256:w1"): failed}),
        settings,
        NOW + timedelta(days=1),
    )
    assert [type(f.event) for f in plan.facts] == [PrepullParked]
    assert plan.requests == ()
    assert plan.parked == 1
    parked = PairState("a", "sha256:w1", state="parked", requests=3, failures=3)
    again = plan_prepulls(
        full_snapshot((RECOMMENDED,), ("a",), {("a", "sha256:w1"): parked}), settings, NOW
    )
    assert again.facts == ()
    assert again.requests == ()


def test_a_failure_is_not_present_and_blocks_completion() -> None:
    ok = PairState("a", "sha256:w1", present=True)
    failed = PairState("b", "sha256:w1", state="failed", failures=1, finished_at=NOW)
    plan = plan_prepulls(
        full_snapshot((RECOMMENDED,), ("a", "b"), {(p.node, p.digest): p for p in (ok, failed)}),
        PrepullSettings(),
        NOW,
    )
    assert plan.complete == ()


def test_complete_when_every_eligible_node_holds_the_digest() -> None:
    pairs = {(n, "sha256:w1"): PairState(n, "sha256:w1", present=True) for n in ("a", "b")}
    pairs[("c", "sha256:w1")] = PairState("c", "sha256:w1")  # ineligible node lacks it
    plan = plan_prepulls(
        full_snapshot((RECOMMENDED, WEEKLY), ("a", "b"), pairs), PrepullSettings(), NOW
    )
    assert plan.complete == (RECOMMENDED,)
    assert complete_message_id(RECOMMENDED) == complete_message_id(RECOMMENDED)
    assert complete_message_id(RECOMMENDED) != complete_message_id(WEEKLY)


def test_planning_is_deterministic() -> None:
    state = snapshot(("a", "b"), PairState("b", "sha256:w1", state="succeeded", requests=1))
    first, second = (plan_prepulls(state, PrepullSettings(), NOW) for _ in range(2))
    assert first == second
    # a digest that vanished after a success is requested again under a new id
    again = next(r for r in first.requests if r.node == "b")
    assert (again.request_number, again.attempt) == (2, 1)


def test_a_complete_image_already_announced_is_not_announced_again() -> None:
    pairs = {(n, "sha256:w1"): PairState(n, "sha256:w1", present=True) for n in ("a", "b")}
    snapshot = full_snapshot((RECOMMENDED, WEEKLY), ("a", "b"), pairs)
    announced = attrs.evolve(snapshot, announced=frozenset({complete_message_id(RECOMMENDED)}))
    assert plan_prepulls(announced, PrepullSettings(), NOW).complete == ()


def test_only_listed_pairs_are_requested() -> None:
    """A narrowed snapshot (as the store reads it) requests nothing it does not list."""
    listed = PlanInput(TARGETS, ("a", "b"), {("b", "sha256:w1"): PairState("b", "sha256:w1")})
    assert pairs_of(plan_prepulls(listed, PrepullSettings(), NOW)) == [("b", "recommended")]
