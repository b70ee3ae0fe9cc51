"""Node inventories: truncated lists and newest-observation-wins (differences 10 and 11)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from worker.domain.inventory import Presence, apply_presence, decide_inventory, is_truncated

T0 = datetime(2077, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_difference_10_a_full_kubelet_list_proves_presence_not_absence() -> None:
    """DOMAIN.md difference 10: a list of exactly nodeStatusMaxImages entries may be cut."""
    known = {"sha256:old": Presence(True, at(0))}
    reported = [f"sha256:{i}" for i in range(50)]
    change = decide_inventory(known, reported, entries=50, observed_at=at(1), max_images=50)
    assert change.truncated
    assert change.disappeared == frozenset()
    assert change.appeared == frozenset(reported)
    complete = decide_inventory(known, reported[:49], entries=49, observed_at=at(1), max_images=50)
    assert not complete.truncated
    assert complete.disappeared == {"sha256:old"}
    assert is_truncated(50)
    assert not is_truncated(49)


def test_unchanged_inventory_changes_nothing() -> None:
    known = {"sha256:a": Presence(True, at(0))}
    change = decide_inventory(known, ["sha256:a"], entries=1, observed_at=at(5))
    assert change.empty


def test_difference_11_an_older_list_never_overturns_a_newer_fact() -> None:
    """DOMAIN.md difference 11: newest observation wins whatever the arrival order."""
    known = {"sha256:a": Presence(True, at(10), source="pod")}
    stale = decide_inventory(known, [], entries=0, observed_at=at(5))
    assert stale.disappeared == frozenset()
    known_gone = {"sha256:a": Presence(False, at(10))}
    assert decide_inventory(known_gone, ["sha256:a"], entries=1, observed_at=at(5)).empty


def test_difference_11_fold_is_order_independent() -> None:
    facts = [
        ("sha256:a", Presence(True, at(1))),
        ("sha256:a", Presence(False, at(3))),
        ("sha256:a", Presence(True, at(2))),
        ("sha256:b", Presence(True, at(4))),
        ("sha256:b", Presence(False, at(0))),
    ]
    results = set()
    for order in itertools.permutations(facts):
        state: dict[str, Presence] = {}
        for digest, fact in order:
            state = apply_presence(state, digest, fact)
        results.add(tuple(sorted((d, p.present, p.observed_at) for d, p in state.items())))
    assert results == {(("sha256:a", False, at(3)), ("sha256:b", True, at(4)))}
