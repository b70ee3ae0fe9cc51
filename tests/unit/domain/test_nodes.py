"""Node eligibility, selectors and kubelet image lists (reference sections 3.4 and 4.2)."""

from __future__ import annotations

import pytest

from worker.domain.nodes import (
    KubeletImage,
    Taint,
    Toleration,
    cached_digests,
    eligibility,
    matches_selector,
)
from worker.domain.references import DockerReference, InvalidReferenceError


def test_untainted_node_is_eligible() -> None:
    assert eligibility([], []).eligible


def test_prefer_no_schedule_is_ignored() -> None:
    assert eligibility([Taint("x", "PreferNoSchedule")], []).eligible


def test_reason_names_the_first_untolerated_taint() -> None:
    taints = [Taint("ok", "NoSchedule", "v"), Taint("some-taint", "NoSchedule", "other-value")]
    verdict = eligibility(taints, [Toleration(key="ok", value="v")])
    assert not verdict.eligible
    assert verdict.comment == "Node is tainted (NoSchedule, some-taint = other-value)"
    assert eligibility([Taint("foo", "NoExecute")], []).comment == (
        "Node is tainted (NoExecute, foo)"
    )


@pytest.mark.parametrize(
    ("toleration", "taint", "tolerated"),
    [
        (Toleration(key="k", value="v"), Taint("k", "NoSchedule", "v"), True),
        (Toleration(key="k", value="v"), Taint("k", "NoSchedule", "w"), False),
        (Toleration(key="k", operator="Exists"), Taint("k", "NoSchedule", "w"), True),
        (Toleration(operator="Exists"), Taint("anything", "NoExecute", "w"), True),
        (
            Toleration(key="k", operator="Exists", effect="NoExecute"),
            Taint("k", "NoSchedule"),
            False,
        ),
        (
            Toleration(key="k", operator="Exists", effect="NoSchedule"),
            Taint("k", "NoSchedule"),
            True,
        ),
        # Temporary tolerance is not enough to prepull onto a NoExecute node.
        (
            Toleration(key="k", operator="Exists", toleration_seconds=60),
            Taint("k", "NoExecute"),
            False,
        ),
        (
            Toleration(key="k", operator="Exists", toleration_seconds=60),
            Taint("k", "NoSchedule"),
            True,
        ),
    ],
)
def test_toleration_rules(toleration: Toleration, taint: Taint, tolerated: bool) -> None:
    assert toleration.tolerates(taint) is tolerated
    assert eligibility([taint], [toleration]).eligible is tolerated


def test_selector_is_equality_only() -> None:
    assert matches_selector({"a": "1", "b": "2"}, {"a": "1"})
    assert not matches_selector({"a": "2"}, {"a": "1"})
    assert not matches_selector({}, {"a": "1"})
    assert matches_selector({}, {})


def test_cached_digests_take_the_first_name_with_a_digest() -> None:
    images = [
        KubeletImage(("reg/lab:w_1", "reg/lab@sha256:aa", "other/x@sha256:bb"), 10),
        KubeletImage((), 20),
        KubeletImage(("reg/lab:tag-only",), 30),
        KubeletImage(("not a reference", "r/x@sha256:cc"), None),
    ]
    assert cached_digests(images) == {"sha256:aa": 10, "sha256:cc": None}


@pytest.mark.parametrize(
    "text",
    [
        "lighthouse.ceres/library/sketchbook:w_2077_43",
        "lighthouse.ceres/library/sketchbook:w_2077_43@sha256:5678",
        "localhost:5000/lab@sha256:abcd",
        "[::1]:5000/lab:tag",
        "reg/lab",
    ],
)
def test_references_round_trip(text: str) -> None:
    assert str(DockerReference.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("sketchbook", "no registry"),
        ("reg/Upper:tag", "invalid repository"),
        ("reg/lab:", "invalid tag"),
        ("reg/lab:bad tag", "invalid tag"),
        ("reg/lab:t@", "invalid digest"),
        ("reg/lab:t@sha256", "invalid digest"),
        ("-reg/lab:t", "invalid registry"),
    ],
)
def test_malformed_references(text: str, problem: str) -> None:
    with pytest.raises(InvalidReferenceError, match=problem):
        DockerReference.parse(text)
