"""Prepull policy and the dropdown filter (reference sections 2.4, 3.1 and 3.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from worker.domain.images import TagEntry, build_collection, parse_entries
from worker.domain.policy import DropdownPolicy, ImageFilter, PrepullPolicy, filter_dropdown
from worker.domain.policy import prepull_candidates as candidates
from worker.domain.tags import parse_tag

TAGS = [
    "recommended",
    "r27_0_0",
    "r26_0_0",
    "r28_0_0_rc1",
    "w_2077_44-amd64",
    "w_2077_43",
    "w_2077_42",
    "w_2077_41",
    "d_2077_10_23",
    "d_2077_10_22",
    "d_2077_10_21",
    "d_2077_10_20",
    "exp_w_2077_40_x",
    "latest_weekly",
]


def chosen(policy: PrepullPolicy, tags: list[str] = TAGS) -> list[str]:
    return candidates([parse_tag(t) for t in tags], policy)


def test_defaults_pick_newest_per_type_and_recommended() -> None:
    assert chosen(PrepullPolicy()) == [
        "r27_0_0",
        "w_2077_43",
        "w_2077_42",
        "d_2077_10_23",
        "d_2077_10_22",
        "d_2077_10_21",
        "recommended",
    ]


def test_pins_add_any_type_but_never_architecture_tags() -> None:
    policy = PrepullPolicy(
        num_releases=0,
        num_weeklies=0,
        num_dailies=0,
        pin=("r28_0_0_rc1", "w_2077_44-amd64", "missing"),
    )
    assert chosen(policy) == ["r28_0_0_rc1", "recommended"]


def test_difference_1_pin_among_newest_appears_once() -> None:
    """DOMAIN.md difference 1: the reference lists (and HEADs) such a tag twice."""
    policy = PrepullPolicy(pin=("w_2077_43", "d_2077_10_20"))
    picked = chosen(policy)
    assert picked.count("w_2077_43") == 1
    assert "d_2077_10_20" in picked
    assert len(picked) == len(set(picked))


def test_policy_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match="num_weeklies"):
        PrepullPolicy(num_weeklies=-1)


NOW = datetime(2025, 2, 19, 17, 0, tzinfo=UTC)
DROPDOWN_TAGS = [
    "w_2025_07", "w_2025_06", "w_2025_05",
    "d_2025_02_19", "d_2025_02_18", "d_2025_02_17",
    "r29_2_1_rsp2332", "r27_0_0_rsp2700", "r26_0_0",
    "recommended", "some_unknown",
]  # fmt: skip


def dropdown(policy: DropdownPolicy, tags: list[str] = DROPDOWN_TAGS) -> list[str]:
    images = build_collection(parse_entries([TagEntry(t) for t in tags])).listing()
    return [i.tag for i in filter_dropdown(images, policy, NOW)]


def test_reference_worked_dropdown_example() -> None:
    policy = DropdownPolicy(
        weekly=ImageFilter(age=timedelta(weeks=2)),
        daily=ImageFilter(age=timedelta(days=2), number=4),
        release=ImageFilter(cutoff_build=2600, cutoff_version="27.0.0"),
    )
    assert dropdown(policy) == [
        "r27_0_0_rsp2700",
        "w_2025_07",
        "w_2025_06",
        "d_2025_02_19",
        "d_2025_02_18",
        "some_unknown",
        "recommended",
    ]


def test_cutoff_date_and_age_take_the_later_threshold() -> None:
    rule = ImageFilter(age=timedelta(weeks=5), cutoff_date=datetime(2025, 2, 1, tzinfo=UTC))
    assert dropdown(DropdownPolicy(weekly=rule), ["w_2025_07", "w_2025_05"]) == ["w_2025_07"]


def test_difference_9_number_absent_is_unlimited_and_zero_is_none() -> None:
    """DOMAIN.md difference 9: the reference treats ``number: 0`` as no limit."""
    assert dropdown(DropdownPolicy(), ["w_2025_07", "w_2025_06"]) == ["w_2025_07", "w_2025_06"]
    zero = DropdownPolicy(weekly=ImageFilter(number=0))
    assert dropdown(zero, ["w_2025_07", "w_2025_06", "recommended"]) == ["recommended"]
    one = DropdownPolicy(weekly=ImageFilter(number=1))
    assert dropdown(one, ["w_2025_07", "w_2025_06"]) == ["w_2025_07"]


def test_cutoff_version_drops_release_candidates_below() -> None:
    rule = DropdownPolicy(release_candidate=ImageFilter(cutoff_version="27.0.0"))
    assert dropdown(rule, ["r27_0_0_rc1", "r27_0_1_rc1"]) == ["r27_0_1_rc1"]


def test_invert_gives_what_to_prune_and_keeps_aliases() -> None:
    policy = DropdownPolicy(weekly=ImageFilter(number=1))
    images = build_collection(
        parse_entries([TagEntry(t) for t in ["w_2025_07", "w_2025_06", "latest"]])
    ).listing()
    assert [i.tag for i in filter_dropdown(images, policy, NOW, invert=True)] == ["w_2025_06"]


def test_bad_cutoff_version_is_rejected() -> None:
    with pytest.raises(ValueError, match="semantic version"):
        ImageFilter(cutoff_version="twenty-seven")
