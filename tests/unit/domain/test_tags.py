"""Tag grammar: types, suffixes, display names and ordering (reference section 1)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from worker.domain.tags import (
    ImageType,
    Version,
    parse_alias_tag,
    parse_tag,
    sort_text,
    sorted_newest_first,
)


@pytest.mark.parametrize(
    ("tag", "name"),
    [
        ("r21_0_1", "Release r21.0.1"),
        ("r22_0_0_rc1", "Release Candidate r22.0.0-rc1"),
        ("w_2021_22", "Weekly 2021_22"),
        ("d_2021_05_27", "Daily 2021_05_27"),
        ("w_2021_22_rsp19-arm64", "Weekly 2021_22 (RSP Build 19) [arm64]"),
        (
            "exp_w_2021_22_c0020.001_rsp19_foo-amd64",
            "Experimental Weekly 2021_22 (SAL Cycle 0020, Build 001) (RSP Build 19) [foo] [amd64]",
        ),
        ("exp_random_c0027-amd64", "Experimental random (SAL Cycle 0027) [amd64]"),
        ("w_2077_43_c0050.004", "Weekly 2077_43 (SAL Cycle 0050, Build 004)"),
        ("recommended_c0027", "recommended (SAL Cycle 0027)"),
        ("latest-amd64", "latest [amd64]"),
        ("not_a_normal_format", "not_a_normal_format"),
        ("r21_0_01", "Release r21.0.1"),
        ("r170", "Release r17.0.0"),
        ("w_2077_44_c0050", "Weekly 2077_44 [c0050]"),
    ],
)
def test_display_names(tag: str, name: str) -> None:
    assert parse_tag(tag).display_name == name


@pytest.mark.parametrize(
    ("tag", "kind"),
    [
        ("recommended", ImageType.UNKNOWN),
        ("r27_0_0", ImageType.RELEASE),
        ("r28_0_0_rc1", ImageType.CANDIDATE),
        ("w_2025_07", ImageType.WEEKLY),
        ("d_2025_02_19", ImageType.DAILY),
        ("d_2021_5_3", ImageType.DAILY),
        ("exp_anything", ImageType.EXPERIMENTAL),
        ("exp_", ImageType.UNKNOWN),
        ("w_2021_60", ImageType.UNKNOWN),  # no ISO week 60: the rule fails, parsing goes on
        ("d_2021_02_30", ImageType.UNKNOWN),
        ("MiXeD_CaSe_TaG", ImageType.UNKNOWN),
        ("r1700", ImageType.UNKNOWN),
    ],
)
def test_types(tag: str, kind: ImageType) -> None:
    assert parse_tag(tag).image_type is kind


def test_empty_tag_is_latest() -> None:
    parsed = parse_tag("")
    assert (parsed.tag, parsed.image_type, parsed.display_name) == (
        "latest",
        ImageType.UNKNOWN,
        "latest",
    )


def test_suffix_order_cycle_before_rsp_build() -> None:
    parsed = parse_tag("w_2021_22_rsp19_c0020.001")
    assert (parsed.build, parsed.cycle, parsed.extra) == (19, None, "c0020.001")
    parsed = parse_tag("w_2021_22_c0020.001_rsp19")
    assert (parsed.cycle, parsed.cycle_build, parsed.build) == (20, 1, 19)


def test_dates() -> None:
    assert parse_tag("w_2021_22").date == datetime(2021, 6, 3, tzinfo=UTC)
    assert parse_tag("d_2025_02_19").date == datetime(2025, 2, 19, tzinfo=UTC)
    assert parse_tag("exp_w_2021_22").date == datetime(2021, 6, 3, tzinfo=UTC)
    assert parse_tag("r27_0_0").date is None


def test_experimental_keeps_the_sub_parse() -> None:
    parsed = parse_tag("exp_r22_0_0_rc1_rsp5")
    assert parsed.image_type is ImageType.EXPERIMENTAL
    assert parsed.semantic is True
    assert parsed.version == Version(22, 0, 0, "rc1")
    assert parsed.build == 5
    assert parsed.display_name == "Experimental Release Candidate r22.0.0-rc1 (RSP Build 5)"


@pytest.mark.parametrize(
    ("tag", "name", "cycle"),
    [
        ("recommended", "Recommended", None),
        ("latest_weekly_c0046", "Latest Weekly (SAL Cycle 0046)", 46),
        ("latest-amd64", "Latest [amd64]", None),
        ("latest_c0046-arm64", "Latest (SAL Cycle 0046) [arm64]", 46),
        ("w_2077_43", "W 2077 43", None),
    ],
)
def test_configured_alias_tags(tag: str, name: str, cycle: int | None) -> None:
    parsed = parse_alias_tag(tag)
    assert parsed.image_type is ImageType.ALIAS
    assert (parsed.display_name, parsed.cycle, parsed.version) == (name, cycle, None)


@pytest.mark.parametrize(
    ("tag", "arch"),
    [
        ("w_2077_43-amd64", "amd64"),
        ("w_2077_43-arm64v8", "arm64v8"),
        ("latest-armv7", "armv7"),
        ("latest-ppc64le", "ppc64le"),
        ("latest-s390x", "s390x"),
        ("latest-riscv64", "riscv64"),
        ("latest-386", "386"),
    ],
)
def test_known_architectures(tag: str, arch: str) -> None:
    assert parse_tag(tag).architecture == arch


def test_difference_3_unknown_suffix_is_not_an_architecture() -> None:
    """DOMAIN.md difference 3: the reference reads ``my-thing`` as base my, arch thing."""
    parsed = parse_tag("my-thing")
    assert (parsed.base, parsed.architecture, parsed.display_name) == ("my-thing", None, "my-thing")
    assert not parsed.is_arch_specific
    assert parse_tag("w_2077_43_foo-bar").extra == "foo-bar"


def test_reference_ordering_fixture() -> None:
    ascending = [
        "r21_0_1",
        "r21_0_1_rsp29",
        "r21_0_1_rsp103",
        "r21_0_1_rsp103_extra",
        "r21_0_1_rsp103_foo-amd64",
        "r21_0_1_rsp103_foo-arm64",
        "r21_0_1_rsp103_foo",
        "r21_0_1_c0031.004",
        "r21_0_1_c0031.004_rsp103",
        "r21_0_1_c0032.004_rsp102",
        "r21_0_1_c0032.004_rsp103",
        "r21_0_1_c0032.005_rsp101",
    ]
    shuffled = ascending[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=lambda t: parse_tag(t).sort_key) == ascending
    assert sorted(shuffled, key=lambda t: sort_text(parse_tag(t))) == ascending


def test_unknowns_sort_reverse_alphabetically_generic_first() -> None:
    tags = ["latest-arm64", "recommended", "latest_c0027-arm64", "recommended_c0027"]
    listed = [t.tag for t in sorted_newest_first(parse_tag(t) for t in tags)]
    assert listed == ["recommended_c0027", "recommended", "latest_c0027-arm64", "latest-arm64"]


def test_difference_2_release_candidates_compare_as_numbers() -> None:
    """DOMAIN.md difference 2: the reference sorts rc10 below rc2 (string comparison)."""
    tags = ["r22_0_0_rc2", "r22_0_0_rc10", "r22_0_0_rc1"]
    newest_first = [t.tag for t in sorted_newest_first(parse_tag(t) for t in tags)]
    assert newest_first == ["r22_0_0_rc10", "r22_0_0_rc2", "r22_0_0_rc1"]
    assert parse_tag("r22_0_0").sort_key > parse_tag("exp_r22_0_0_rc10").sort_key


def test_difference_2_tags_are_identified_by_their_string() -> None:
    """The reference calls w_2021_22 and w_2021_022 equal but hashes them apart."""
    a, b = parse_tag("w_2021_22"), parse_tag("w_2021_022")
    assert a != b
    assert len({a, b}) == 2
    assert a.sort_key != b.sort_key
    assert a == parse_tag("w_2021_22")


def test_versioned_experimentals_sort_below_unversioned() -> None:
    tags = ["exp_random", "exp_w_2021_22", "exp_r21_0_1"]
    listed = [t.tag for t in sorted_newest_first(parse_tag(t) for t in tags)]
    assert listed == ["exp_random", "exp_w_2021_22", "exp_r21_0_1"]
