"""Resolving tags, references and image classes: the pure lookups and the service on fakes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from attrs import define, field

from tests.support import conformance as c
from worker import converter as wire
from worker.config import Config
from worker.converter import ValidationError
from worker.domain.errors import (
    InvalidDockerReferenceError,
    RegistryUnavailableError,
    UnknownImageError,
)
from worker.domain.images import Repository, TagEntry
from worker.domain.menu import ImageCatalog
from worker.domain.nodes import Node, Taint
from worker.domain.refresh import HeadFailed, HeadFound, HeadMissing, HeadResult
from worker.domain.spawner import (
    FetchDigest,
    Found,
    ImageClass,
    LedgerSnapshot,
    lookup_class,
    lookup_reference,
    lookup_tag,
    parse_reference,
    resolved_image,
)
from worker.services.resolve import ImageResolver
from worker.services.spawner import SpawnerCatalog

REPO = "lighthouse.ceres/library/sketchbook"


def standard() -> tuple[Config, ImageCatalog]:
    cfg, result = c.run("standard", "docker", "standard", "prepull-set")
    return cfg, result.view


def lookup(text: str) -> Found | FetchDigest:
    return lookup_reference(standard()[1], parse_reference(text), text)


# --------------------------------------------------------------------------- pure lookups


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sketchbook:w_2077_43", 'Docker reference "sketchbook:w_2077_43" has no registry'),
        (REPO, f'Docker reference "{REPO}" has no tag'),
        (f"{REPO}:bad tag", f'Docker reference "{REPO}:bad tag" has an invalid tag'),
    ],
)
def test_invalid_references(text: str, message: str) -> None:
    with pytest.raises(InvalidDockerReferenceError, match=message):
        parse_reference(text)


def test_a_tag_is_always_fetched_fresh() -> None:
    view = standard()[1]
    assert lookup_tag(view, "w_2077_43") == FetchDigest(
        "w_2077_43", 'Docker tag "w_2077_43" not found'
    )
    with pytest.raises(UnknownImageError, match=r'^Docker tag "unknown" not found$'):
        lookup_tag(view, "unknown")


def test_reference_lookups_follow_the_reference() -> None:
    # A prepull-set digest names its image whatever the tag.
    found = lookup(f"{REPO}:latest_daily@sha256:5678")
    assert isinstance(found, Found)
    assert found.image.tag == "w_2077_43"
    # A prepull-set tag gives its current digest, not an older one from the form.
    found = lookup(f"{REPO}:d_2077_10_23@sha256:old")
    assert isinstance(found, Found)
    assert found.image.digest == "sha256:1234"
    # Another known tag takes the reference's digest as given.
    found = lookup(f"{REPO}:latest_weekly@sha256:9999")
    assert isinstance(found, Found)
    assert (found.image.tag, found.image.digest) == ("latest_weekly", "sha256:9999")
    # Without a digest the registry is asked.
    assert lookup(f"{REPO}:recommended") == FetchDigest(
        "recommended", f'Docker reference "{REPO}:recommended" not found'
    )


@pytest.mark.parametrize(
    "text",
    [f"{REPO}:unknown", "other.host/library/sketchbook:w_2077_43", "lighthouse.ceres/x:w_2077_43"],
)
def test_unknown_references(text: str) -> None:
    with pytest.raises(UnknownImageError, match=f'^Docker reference "{text}" not found$'):
        lookup(text)


def test_a_digest_alone_must_be_in_the_prepull_set() -> None:
    assert isinstance(lookup(f"{REPO}@sha256:1234"), Found)
    with pytest.raises(InvalidDockerReferenceError, match="has no tag"):
        lookup(f"{REPO}@sha256:0000")


def test_image_classes() -> None:
    view = standard()[1]
    found = lookup_class(view, ImageClass.RECOMMENDED)
    assert isinstance(found, Found)
    assert found.image.display_name == "Recommended (Weekly 2077_43)"
    found = lookup_class(view, ImageClass.LATEST_DAILY)
    assert isinstance(found, Found)
    assert found.image.tag == "d_2077_10_23"
    with pytest.raises(UnknownImageError, match=r"^No latest-release image found$"):
        lookup_class(view, ImageClass.LATEST_RELEASE)


def test_resolved_image_and_its_json() -> None:
    view = standard()[1]
    image = view.collection.image_for_tag("recommended")
    assert image is not None
    assert wire.resolved_image_json(resolved_image(view, image)) == {
        "reference": f"{REPO}:recommended",
        "tag": "recommended",
        "name": "Recommended (Weekly 2077_43)",
        "digest": "sha256:5678",
        "aliases": ["w_2077_43"],
        "prepulled": True,
        "reference_with_digest": f"{REPO}:recommended@sha256:5678",
    }


def test_view_nodes_from_rows() -> None:
    taints = [{"key": "gpu", "value": None, "effect": "NoSchedule"}]
    node = wire.view_node("n1", {"zone": "a"}, taints, {"sha256:1": 5})
    assert node == Node("n1", {"zone": "a"}, (Taint("gpu", "NoSchedule"),), {"sha256:1": 5})
    with pytest.raises(ValidationError, match="taints of node n1"):
        wire.view_node("n1", {}, [{"key": "gpu"}], {})


# --------------------------------------------------------------------------- the service


@define
class MemoryLedger:
    """The ledger as a dict of tags and a list of nodes; every change is one more event."""

    repository: Repository
    tags: dict[str, str | None]
    nodes: list[Node] = field(factory=list)
    events: int = 1

    async def position(self) -> int:
        return self.events

    async def state(self, repository: Repository) -> LedgerSnapshot:
        assert repository == self.repository
        entries = tuple(TagEntry(t, d) for t, d in self.tags.items())
        return LedgerSnapshot(self.events, entries, tuple(self.nodes))


@define
class MemoryRegistry:
    """A registry of tag -> digest that can be down."""

    tags: dict[str, str]
    down: bool = False

    async def resolve(self, tags: Sequence[str]) -> Mapping[str, HeadResult]:
        out: dict[str, HeadResult] = {}
        for tag in tags:
            if self.down:
                out[tag] = HeadFailed("connection failed")
            elif tag in self.tags:
                out[tag] = HeadFound(self.tags[tag])
            else:
                out[tag] = HeadMissing()
        return out


def service() -> tuple[MemoryLedger, MemoryRegistry, ImageResolver, SpawnerCatalog]:
    cfg = c.config("standard")
    tags = {t: e.digest for t, e in ((e.tag, e) for e in c.entries("docker", cfg))}
    ledger = MemoryLedger(cfg.images.repository, dict(tags), c.nodes("standard"))
    registry = MemoryRegistry({t: d for t, d in tags.items() if d is not None})
    views = SpawnerCatalog(ledger, cfg)
    return ledger, registry, ImageResolver(views, lambda: registry), views


async def test_a_moved_tag_resolves_to_its_new_digest_with_its_new_aliases() -> None:
    _, registry, resolver, _ = service()
    registry.tags["w_2077_43"] = "sha256:1234"  # moved onto the daily, no refresh yet
    image = await resolver.for_tag("w_2077_43")
    assert (image.digest, image.aliases) == ("sha256:1234", ("d_2077_10_23", "latest_daily"))
    assert image.prepulled is False  # node2 lacks the daily
    image = await resolver.for_reference(f"{REPO}:recommended")
    assert (image.digest, image.name) == ("sha256:5678", "Recommended (Weekly 2077_43)")


async def test_the_three_errors() -> None:
    _, registry, resolver, _ = service()
    with pytest.raises(InvalidDockerReferenceError):
        await resolver.for_reference("nonsense")
    del registry.tags["d_2077_10_23"]  # gone from the registry since the last refresh
    with pytest.raises(UnknownImageError, match=r'^Docker tag "d_2077_10_23" not found$'):
        await resolver.for_tag("d_2077_10_23")
    registry.down = True
    with pytest.raises(RegistryUnavailableError, match="w_2077_43: connection failed"):
        await resolver.for_tag("w_2077_43")
    # A digest of the prepull set needs no registry.
    image = await resolver.for_reference(f"{REPO}:w_2077_43@sha256:5678")
    assert image.reference_with_digest == f"{REPO}:w_2077_43@sha256:5678"


async def test_the_view_is_cached_until_the_log_grows() -> None:
    ledger, _, _, views = service()
    first = await views.current()
    assert await views.current() is first
    ledger.nodes = [n for n in ledger.nodes if n.name != "node2"]
    assert await views.current() is first  # nothing appended: the cache stands
    ledger.events += 1
    second = await views.current()
    assert second is not first
    assert [n.name for n in second.view.nodes] == ["node1"]
