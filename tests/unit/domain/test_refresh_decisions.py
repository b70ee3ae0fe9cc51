"""Refresh decisions: what to HEAD, and the events a listing and its HEADs produce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from worker.domain.events import (
    RefreshCompleted,
    TagDiscovered,
    TagMoved,
    TagRemoved,
    TagResolved,
)
from worker.domain.images import Repository
from worker.domain.policy import PrepullPolicy
from worker.domain.refresh import (
    HeadFailed,
    HeadFound,
    HeadMissing,
    HeadResult,
    RefreshCost,
    RemovalLimit,
    decide_refresh,
    plan_removals,
    tags_to_head,
)

REPO = Repository("localhost:5000", "lab")
START = datetime(2077, 1, 1, tzinfo=UTC)
END = START + timedelta(seconds=2)
LISTED = [
    "recommended",
    "latest_weekly",
    "w_2077_44",
    "w_2077_43",
    "w_2077_42",
    "w_2077_41",
    "w_2077_44-amd64",
    "d_2077_10_23",
    "r27_0_0",
    "r26_0_0",
    "exp_foo",
]


def decide(known: dict[str, str | None], listed: list[str], heads: dict[str, HeadResult]):  # type: ignore[no-untyped-def]
    return decide_refresh(
        REPO,
        known,
        listed,
        heads,
        refresh_id="r1",
        started_at=START,
        finished_at=END,
        cost=RefreshCost(),
    )


def test_candidates_and_aliases_first_then_budget_of_unresolved() -> None:
    order = tags_to_head({}, LISTED, PrepullPolicy(), resolve_budget=2)
    assert order[:6] == [
        "recommended",
        "r27_0_0",
        "w_2077_44",
        "w_2077_43",
        "d_2077_10_23",
        "latest_weekly",
    ]
    assert order[6:] == ["r26_0_0", "w_2077_44-amd64"]
    known = dict.fromkeys(LISTED, "sha256:x")
    warm = tags_to_head(known, LISTED, PrepullPolicy(), resolve_budget=100)
    assert warm == order[:6]


def test_budget_zero_heads_only_the_prepull_set_and_aliases() -> None:
    assert len(tags_to_head({}, LISTED, PrepullPolicy(), resolve_budget=0)) == 6


def test_first_refresh_discovers_every_tag() -> None:
    outcome = decide({}, ["a", "w_2077_43"], {"w_2077_43": HeadFound("sha256:1")})
    kinds = [type(e) for e in outcome.events]
    assert kinds == [TagDiscovered, TagDiscovered, RefreshCompleted]
    assert outcome.events[0] == TagDiscovered(
        registry="localhost:5000", repository="lab", tag="a", digest=None, occurred_at=END
    )
    summary = outcome.events[-1]
    assert isinstance(summary, RefreshCompleted)
    assert (summary.discovered, summary.tags_total, summary.duration_seconds) == (2, 2, 2.0)


def test_no_change_appends_only_the_summary() -> None:
    known: dict[str, str | None] = {"a": "sha256:1", "b": None}
    outcome = decide(known, ["a", "b"], {"a": HeadFound("sha256:1")})
    assert not outcome.changed
    assert [type(e) for e in outcome.events] == [RefreshCompleted]


def test_move_resolve_remove_and_404() -> None:
    known: dict[str, str | None] = {"a": "sha256:1", "b": None, "c": "sha256:3", "gone": "sha256:4"}
    heads: dict[str, HeadResult] = {
        "a": HeadFound("sha256:9"),
        "b": HeadFound("sha256:2"),
        "c": HeadMissing(),
        "gone": HeadMissing(),
    }
    events = decide(known, ["a", "b", "c"], heads).events
    assert events[0] == TagMoved(
        registry="localhost:5000",
        repository="lab",
        tag="a",
        old_digest="sha256:1",
        new_digest="sha256:9",
        occurred_at=END,
    )
    assert isinstance(events[1], TagResolved)
    assert events[1].digest == "sha256:2"
    removed = [e for e in events if isinstance(e, TagRemoved)]
    assert [(e.tag, e.last_digest) for e in removed] == [("c", "sha256:3"), ("gone", "sha256:4")]
    summary = events[-1]
    assert isinstance(summary, RefreshCompleted)
    assert (summary.moved, summary.resolved, summary.removed, summary.tags_total) == (1, 1, 2, 2)


def test_failed_head_keeps_the_last_digest_and_is_flagged() -> None:
    outcome = decide(
        {"a": "sha256:1"},
        ["a", "new"],
        {"a": HeadFailed("503 after 4 tries"), "new": HeadFailed("timeout")},
    )
    assert outcome.flagged == ("a", "new")
    assert [type(e) for e in outcome.events] == [TagDiscovered, RefreshCompleted]
    discovered = outcome.events[0]
    assert isinstance(discovered, TagDiscovered)
    assert discovered.digest is None
    summary = outcome.events[-1]
    assert isinstance(summary, RefreshCompleted)
    assert summary.flagged_tags == ("a", "new")


def test_a_listed_tag_that_404s_before_it_was_known_adds_nothing() -> None:
    outcome = decide({}, ["ghost"], {"ghost": HeadMissing()})
    assert [type(e) for e in outcome.events] == [RefreshCompleted]


def test_an_unlisted_tag_is_removed_only_on_its_own_404() -> None:
    known: dict[str, str | None] = {"a": "sha256:1", "gone": "sha256:2", "hidden": "sha256:3"}
    heads: dict[str, HeadResult] = {"gone": HeadMissing(), "hidden": HeadFound("sha256:4")}
    outcome = decide(known, ["a"], heads)
    removed = [e.tag for e in outcome.events if isinstance(e, TagRemoved)]
    moved = [(e.tag, e.new_digest) for e in outcome.events if isinstance(e, TagMoved)]
    assert removed == ["gone"]
    assert moved == [("hidden", "sha256:4")]
    assert outcome.flagged == ()
    assert outcome.current == ("a", "hidden")


def test_an_unlisted_tag_not_confirmed_is_kept_and_flagged() -> None:
    known: dict[str, str | None] = {"a": "sha256:1", "b": "sha256:2", "c": "sha256:3"}
    outcome = decide(known, ["a"], {"b": HeadFailed("503 after 4 tries")})
    assert not [e for e in outcome.events if isinstance(e, TagRemoved)]
    assert outcome.flagged == ("b", "c")
    assert outcome.current == ("a", "b", "c")
    summary = outcome.events[-1]
    assert isinstance(summary, RefreshCompleted)
    assert (summary.removed, summary.tags_total, summary.flagged_tags) == (0, 3, ("b", "c"))


def test_removal_limit_is_a_share_of_the_known_tags_with_a_floor() -> None:
    assert RemovalLimit().of(10) == 5
    assert RemovalLimit().of(200) == 20
    assert RemovalLimit().of(201) == 21
    assert RemovalLimit(percent=50).of(10) == 5
    assert RemovalLimit(count=2).of(1000) == 2


def test_unlisted_tags_within_the_limit_are_all_confirmed() -> None:
    known: dict[str, str | None] = dict.fromkeys(["w_2077_40", "w_2077_41", "w_2077_42"])
    plan = plan_removals(known, ["w_2077_42"], RemovalLimit(), resolve_budget=0)
    assert plan.confirm == ("w_2077_41", "w_2077_40")
    assert plan.unconfirmed == ()


def test_a_listing_that_would_remove_too_much_is_confirmed_within_the_budget() -> None:
    known: dict[str, str | None] = {f"w_2077_{n:02d}": None for n in range(10, 30)}
    plan = plan_removals(known, [], RemovalLimit(), resolve_budget=3)
    assert plan.confirm == ("w_2077_29", "w_2077_28", "w_2077_27")
    assert plan.unconfirmed == tuple(f"w_2077_{n:02d}" for n in range(26, 9, -1))
