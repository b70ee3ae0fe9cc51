"""``worker.domain.planning``: the coverage matrix and the request window walked over it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from worker.domain.planning import Coverage, PairCoverage, request_candidates

NODES = [f"n{i}" for i in range(7)]
DIGESTS = ["a", "b", "c", "d"]

_pair = st.builds(PairCoverage, st.booleans(), st.sampled_from([None, "requested", "failed",
                                                               "parked", "succeeded"]))  # fmt: skip
_world = st.fixed_dictionaries(
    {
        "eligible": st.sets(st.sampled_from(NODES)),
        "rows": st.dictionaries(
            st.tuples(st.sampled_from(NODES), st.sampled_from(DIGESTS)), _pair, max_size=20
        ),
        "busy": st.dictionaries(st.sampled_from(NODES), st.integers(0, 3)),
        "wanted": st.lists(st.sampled_from(DIGESTS), unique=True),
        "per_node": st.integers(1, 3),
        "total": st.integers(1, 10),
    }
)


def _coverage(world: dict) -> Coverage:  # type: ignore[type-arg]
    coverage = Coverage(DIGESTS)
    for node in NODES:
        mine = {d: p for (n, d), p in world["rows"].items() if n == node}
        coverage.put(node, node in world["eligible"], mine)
    return coverage


def _window(world: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    """The window as the SQL it replaces defined it: per node with room its uncovered wanted
    pairs ranked in target order, those ranked within the room, the first ``total`` of
    them in (target, node) order."""
    rows, busy = world["rows"], world["busy"]
    missing = []
    for node in sorted(world["eligible"]):
        room = world["per_node"] - busy.get(node, 0)
        if room <= 0:
            continue
        k = 0
        for ord_, digest in enumerate(world["wanted"]):
            pair = rows.get((node, digest))
            if pair is not None and pair.covered:
                continue
            k += 1
            if k <= room:
                missing.append((ord_, node, digest))
    return [(node, digest) for _, node, digest in sorted(missing)][: world["total"]]


@given(world=_world)
def test_the_walk_finds_the_window_of_the_whole_matrix(world: dict) -> None:  # type: ignore[type-arg]
    coverage = _coverage(world)
    found = request_candidates(
        coverage, world["wanted"], world["busy"], world["per_node"], world["total"]
    )
    assert found == _window(world)


@given(world=_world)
def test_held_everywhere_means_every_eligible_node_holds_it(world: dict) -> None:  # type: ignore[type-arg]
    coverage = _coverage(world)
    eligible = sorted(world["eligible"])
    assert coverage.eligible_nodes == tuple(eligible)
    held = {
        d
        for d in DIGESTS
        if eligible
        and all((p := world["rows"].get((n, d))) is not None and p.present for n in eligible)
    }
    assert coverage.held_everywhere() == held


def test_a_node_put_again_replaces_what_was_known() -> None:
    coverage = Coverage(["a", "b"])
    coverage.put("n1", True, {"a": PairCoverage(True)})
    assert list(coverage.uncovered("a")) == []
    assert list(coverage.uncovered("b")) == ["n1"]
    coverage.put_pair("n1", "b", PairCoverage(False, "requested"))
    assert list(coverage.uncovered("b")) == []
    assert coverage.held_everywhere() == {"a"}
    coverage.put("n1", False, {})
    assert coverage.eligible_nodes == ()
    assert coverage.held_everywhere() == frozenset()
    coverage.put_pair("n1", "a", None)  # not eligible: ignored
    assert list(coverage.uncovered("a")) == []
