"""Image collections: primary images, alias resolution and listings (reference section 2)."""

from __future__ import annotations

from worker.domain.images import (
    ImageCollection,
    Repository,
    TagEntry,
    build_collection,
    parse_entries,
)
from worker.domain.tags import ImageType


def collection(*entries: tuple[str, str | None], aliases: tuple[str, ...] = ()) -> ImageCollection:
    return build_collection(parse_entries([TagEntry(t, d) for t, d in entries], aliases))


def test_configured_alias_resolves_against_typed_image() -> None:
    images = collection(
        ("recommended", "sha256:a"), ("w_2077_43", "sha256:a"), aliases=("recommended",)
    )
    recommended = images.image_for_tag("recommended")
    assert recommended is not None
    assert recommended.display_name == "Recommended (Weekly 2077_43)"
    assert recommended.alias_target == "w_2077_43"
    assert recommended.alias_names() == ["w_2077_43"]
    weekly = images.image_for_tag("w_2077_43")
    assert weekly is not None
    assert weekly.alias_names() == ["recommended"]
    assert images.image_for_digest("sha256:a") is weekly


def test_cycle_alias_name() -> None:
    images = collection(
        ("recommended_c0050", "sha256:a"),
        ("w_2077_43_c0050.002", "sha256:a"),
        aliases=("recommended_c0050",),
    )
    image = images.image_for_tag("recommended_c0050")
    assert image is not None
    assert image.display_name == "Recommended (Weekly 2077_43, SAL Cycle 0050, Build 002)"


def test_unknown_alias_takes_target_architecture_and_brackets() -> None:
    images = collection(("latest", "sha256:a"), ("r21_0_2_rsp64_stuff-amd64", "sha256:a"))
    image = images.image_for_tag("latest")
    assert image is not None
    assert image.image_type is ImageType.ALIAS
    assert image.display_name == "Latest (Release r21.0.2, RSP Build 64 [stuff]) [amd64]"
    assert image.parsed.architecture == "amd64"


def test_unknown_with_cycle_takes_target_cycle() -> None:
    images = collection(("latest_c0040", "sha256:a"), ("w_2077_45-amd64", "sha256:a"))
    image = images.image_for_tag("latest_c0040")
    assert image is not None
    assert image.display_name == "Latest (Weekly 2077_45) [amd64]"
    assert image.parsed.cycle is None


def test_unknowns_sharing_a_digest_stay_unknown() -> None:
    images = collection(("foo", "sha256:a"), ("bar", "sha256:a"))
    foo = images.image_for_tag("foo")
    assert foo is not None
    assert foo.image_type is ImageType.UNKNOWN
    assert foo.alias_target is None
    assert foo.alias_names() == ["bar"]


def test_primary_is_the_first_typed_image_in_display_order() -> None:
    images = collection(("w_2077_43", "sha256:a"), ("r27_0_0", "sha256:a"), ("latest", "sha256:a"))
    primary = images.image_for_digest("sha256:a")
    assert primary is not None
    assert primary.tag == "r27_0_0"
    latest = images.image_for_tag("latest")
    assert latest is not None
    assert latest.display_name == "Latest (Release r27.0.0)"
    weekly = images.image_for_tag("w_2077_43")
    assert weekly is not None
    assert weekly.alias_names() == ["latest", "r27_0_0"]


def test_listing_hides() -> None:
    images = collection(
        ("recommended", "sha256:a"),
        ("w_2077_43", "sha256:a"),
        ("w_2077_42", "sha256:b"),
        ("w_2077_44-amd64", "sha256:c"),
        aliases=("recommended",),
    )
    assert [i.tag for i in images.listing()] == ["recommended", "w_2077_43", "w_2077_42"]
    assert [i.tag for i in images.listing(include_arch=True)] == [
        "recommended",
        "w_2077_44-amd64",
        "w_2077_43",
        "w_2077_42",
    ]
    assert [i.tag for i in images.listing(hide_aliased=True)] == ["recommended", "w_2077_42"]
    assert [i.tag for i in images.listing(hide_resolved_aliases=True)] == ["w_2077_43", "w_2077_42"]
    subset = images.subset({"recommended"})
    assert [i.tag for i in subset.listing(hide_resolved_aliases=True)] == ["recommended"]


def test_digests_gives_one_primary_per_digest_in_display_order() -> None:
    images = collection(
        ("recommended", "sha256:a"),
        ("w_2077_43", "sha256:a"),
        ("d_2077_10_23", "sha256:b"),
        ("latest", None),
        aliases=("recommended",),
    )
    assert [i.tag for i in images.digests().values()] == ["w_2077_43", "d_2077_10_23"]


def test_cycle_filter_uses_each_tags_own_cycle() -> None:
    entries = [
        TagEntry("recommended", "sha256:a"),
        TagEntry("recommended_c0050", "sha256:b"),
        TagEntry("w_2077_43_c0050.002", "sha256:b"),
        TagEntry("w_2077_43_c0049.001", "sha256:c"),
    ]
    images = parse_entries(entries, {"recommended", "recommended_c0050"}, cycle=50)
    assert [i.tag for i in images] == ["recommended_c0050", "w_2077_43_c0050.002"]


def test_repository_references() -> None:
    repo = Repository("localhost:5000", "library/lab")
    assert repo.reference("w_1") == "localhost:5000/library/lab:w_1"
    assert repo.reference("w_1", "sha256:a") == "localhost:5000/library/lab:w_1@sha256:a"
