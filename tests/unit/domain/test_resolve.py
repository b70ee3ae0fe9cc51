"""Resolving tags, references and image classes: the pure lookups and the service on fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import timedelta

import pytest
from attrs import define, field

from tests.support import conformance as c
from worker import converter as wire
from worker.config import Config
from worker.converter import ValidationError
from worker.domain.errors import (
    InvalidDockerReferenceError,
    RegistryUnavailableError,
    ResolveRateLimitedError,
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
from worker.services.fresh_digests import FreshDigests
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


def test_a_complete_listing_heads_only_tags_it_did_not_list() -> None:
    """``head_unknown`` (a Google source): an unlisted tag may have been pushed since."""
    view = standard()[1]
    assert isinstance(lookup_tag(view, "w_2077_43", head_unknown=True), Found)
    wanted = lookup_tag(view, "w_2077_45", head_unknown=True)
    assert wanted == FetchDigest("w_2077_45", 'Docker tag "w_2077_45" not found')
    text = f"{REPO}:w_2077_45"
    by_reference = lookup_reference(view, parse_reference(text), text, head_unknown=True)
    assert by_reference == FetchDigest("w_2077_45", f'Docker reference "{text}" not found')
    snapshot = LedgerSnapshot(1, (TagEntry("w_2077_43", "sha256:5678"),), ())
    assert snapshot.with_digest("w_2077_45", "sha256:45") == (
        TagEntry("w_2077_43", "sha256:5678"),
        TagEntry("w_2077_45", "sha256:45"),
    )


def test_a_tag_is_answered_from_the_ledger_when_it_knows_the_digest() -> None:
    view = standard()[1]
    found = lookup_tag(view, "w_2077_43")
    assert isinstance(found, Found)
    assert (found.image.tag, found.image.digest) == ("w_2077_43", "sha256:5678")
    with pytest.raises(UnknownImageError, match=r'^Docker tag "unknown" not found$'):
        lookup_tag(view, "unknown")
    cfg = c.config("standard")
    entries = [TagEntry("w_2077_43", "sha256:5678"), TagEntry("exp_never_resolved", None)]
    unresolved = SpawnerCatalog(MemoryLedger(cfg.images.repository, {}), cfg).build(
        LedgerSnapshot(1, tuple(entries), ())
    )
    assert lookup_tag(unresolved, "exp_never_resolved") == FetchDigest(
        "exp_never_resolved", 'Docker tag "exp_never_resolved" not found'
    )


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
    # Without a digest the ledger's digest is the answer; the registry only for a tag whose
    # digest the ledger never learned.
    found = lookup(f"{REPO}:recommended")
    assert isinstance(found, Found)
    assert (found.image.tag, found.image.digest) == ("recommended", "sha256:5678")
    assert lookup(f"{REPO}:latest_weekly") == FetchDigest(
        "latest_weekly", f'Docker reference "{REPO}:latest_weekly" not found'
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
    heads: list[str] = field(factory=list)
    """The tags HEADed, in order (what the registry saw)."""
    delay: float = 0.0

    async def resolve(self, tags: Sequence[str]) -> Mapping[str, HeadResult]:
        out: dict[str, HeadResult] = {}
        self.heads.extend(tags)
        await asyncio.sleep(self.delay)
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
    tags |= {"exp_unresolved": None, "exp_other": None}  # listed, never HEADed by a refresh
    ledger = MemoryLedger(cfg.images.repository, dict(tags), c.nodes("standard"))
    registry = MemoryRegistry({t: d for t, d in tags.items() if d is not None})
    views = SpawnerCatalog(ledger, cfg)
    heads = FreshDigests(lambda: registry, ttl=timedelta(seconds=30), per_minute=60)
    return ledger, registry, ImageResolver(views, heads), views


async def test_the_ledger_answers_and_a_head_is_made_only_for_an_unresolved_tag() -> None:
    _, registry, resolver, _ = service()
    registry.tags["w_2077_43"] = "sha256:1234"  # moved in the registry, no refresh yet
    image = await resolver.for_tag("w_2077_43")
    assert (image.digest, image.aliases) == ("sha256:5678", ("latest_weekly", "recommended"))
    assert registry.heads == []  # the ledger knew
    registry.tags["exp_unresolved"] = "sha256:1234"  # the daily's digest
    image = await resolver.for_tag("exp_unresolved")
    assert (image.digest, image.aliases) == (
        "sha256:1234",
        ("d_2077_10_23", "latest_daily"),
    )
    assert image.prepulled is False  # node2 lacks the daily
    image = await resolver.for_reference(f"{REPO}:recommended")
    assert (image.digest, image.name) == ("sha256:5678", "Recommended (Weekly 2077_43)")
    assert registry.heads == ["exp_unresolved"]


async def test_the_errors() -> None:
    _, registry, resolver, _ = service()
    with pytest.raises(InvalidDockerReferenceError):
        await resolver.for_reference("nonsense")
    with pytest.raises(UnknownImageError, match=r'^Docker tag "exp_unresolved" not found$'):
        await resolver.for_tag("exp_unresolved")  # gone from the registry since the refresh
    registry.down = True
    with pytest.raises(RegistryUnavailableError, match="exp_other: connection failed"):
        await resolver.for_tag("exp_other")
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


# --------------------------------------------------------------------------- fresh HEADs


@define
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_asks_share_one_head_and_its_answer_stands_for_the_ttl() -> None:
    registry = MemoryRegistry({"a": "sha256:1", "b": "sha256:2"}, delay=0.05)
    clock = Clock()
    heads = FreshDigests(lambda: registry, ttl=timedelta(seconds=30), per_minute=60, clock=clock)
    answers = await asyncio.gather(*(heads.head(t) for t in ["a", "b"] * 200))
    assert answers == [HeadFound("sha256:1"), HeadFound("sha256:2")] * 200
    assert sorted(registry.heads) == ["a", "b"]
    clock.now = 29.9
    registry.tags["a"] = "sha256:9"
    assert await heads.head("a") == HeadFound("sha256:1")  # still the cached answer
    clock.now = 30.1
    assert await heads.head("a") == HeadFound("sha256:9")
    assert registry.heads.count("a") == 2
    del registry.tags["b"]
    clock.now = 61.0
    assert await heads.head("b") == HeadMissing()  # a 404 is an answer too


async def test_a_failed_head_is_not_kept() -> None:
    registry = MemoryRegistry({"a": "sha256:1"}, down=True)
    heads = FreshDigests(lambda: registry, ttl=timedelta(seconds=30), per_minute=60)
    assert isinstance(await heads.head("a"), HeadFailed)
    registry.down = False
    assert await heads.head("a") == HeadFound("sha256:1")


async def test_past_the_budget_a_head_is_refused_with_the_wait() -> None:
    registry = MemoryRegistry({f"t{i}": f"sha256:{i}" for i in range(100)})
    clock = Clock()
    heads = FreshDigests(lambda: registry, ttl=timedelta(seconds=30), per_minute=6, clock=clock)
    for i in range(6):  # a burst of the whole budget
        await heads.head(f"t{i}")
    with pytest.raises(ResolveRateLimitedError) as refused:
        await heads.head("t6")
    assert refused.value.retry_after == 10  # one HEAD every 60 / 6 seconds
    assert refused.value.http_status == 429
    assert await heads.head("t0") == HeadFound("sha256:0")  # cached answers cost nothing
    clock.now = 9.0
    with pytest.raises(ResolveRateLimitedError) as refused:
        await heads.head("t6")
    assert refused.value.retry_after == 1
    clock.now = 10.0
    assert await heads.head("t6") == HeadFound("sha256:6")
    assert len(registry.heads) == 7
