"""Domain properties: parsing never raises, orderings are total, listings are deterministic."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from random import Random
from typing import get_args

import attrs
import pytest
from hypothesis import HealthCheck, Phase, example, find, given, settings
from hypothesis import strategies as st

from worker.config import Config, DockerSource, GoogleSource, ImagesConfig, LabConfig
from worker.domain.images import (
    Image,
    ImageCollection,
    Repository,
    TagEntry,
    build_collection,
    parse_entries,
)
from worker.domain.menu import ImageCatalog, PrepullRequest, make_view
from worker.domain.nodes import Node, Taint, Toleration
from worker.domain.policy import (
    DropdownPolicy,
    ImageFilter,
    PrepullPolicy,
    prepull_candidates,
)
from worker.domain.tags import (
    KNOWN_ARCHITECTURES,
    ImageType,
    ParsedTag,
    parse_alias_tag,
    parse_tag,
    sort_text,
    sorted_newest_first,
)
from worker.services.evaluate import DigestKnowledge, evaluate

# --------------------------------------------------------------------------- tag strategies

_REGISTRY_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_ARCH_NAME = re.compile("(?:" + "|".join(KNOWN_ARCHITECTURES) + r")(?:v\d+)?")
_KNOWN_ARCHES = (*KNOWN_ARCHITECTURES, "arm64v8", "armv7", "amd64v3", "386v2")
_UNKNOWN_ARCHES = ("thing", "x86", "armhf", "amd", "arm64x", "v8", "ARM64", "")

_digits = st.text("0123456789", min_size=1, max_size=5)
_year = st.integers(1990, 2080).map(str) | _digits
_week = st.integers(1, 53).map(lambda n: f"{n:02d}") | _digits
_month = st.integers(1, 12).map(lambda n: f"{n:02d}") | _digits
_day = st.integers(1, 31).map(lambda n: f"{n:02d}") | _digits
_word = st.text("abcdefghijklmnopqrstuvwxyzABC0123456789_.-", min_size=1, max_size=12)
_alias_word = st.sampled_from(
    ["recommended", "latest", "latest_weekly", "latest_daily", "latest_release", "stable"]
)


def _opt(part: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.just("") | part


_cycle_digits = st.sampled_from(["0050", "0049", "50"]) | _digits
_cycle = st.builds(lambda c, b: f"_c{c}.{b}", _cycle_digits, _digits)
_bare_cycle = _cycle_digits.map(lambda c: f"_c{c}")
_rsp = _digits.map(lambda n: f"_rsp{n}")
_extra = _word.map(lambda w: f"_{w}")
_arch = st.sampled_from(_KNOWN_ARCHES + _UNKNOWN_ARCHES).map(lambda a: f"-{a}")
_suffixes = st.builds(
    lambda *parts: "".join(parts),
    _opt(_cycle | _bare_cycle),
    _opt(_rsp),
    _opt(_extra),
    _opt(_arch),
)

_release = st.builds(lambda a, b, c: f"r{a}_{b}_{c}", _digits, _digits, _digits)
_candidate = st.builds(lambda r, n: f"{r}_rc{n}", _release, _digits)
_legacy = st.text("0123456789", min_size=2, max_size=4).map(lambda d: f"r{d}")
_weekly = st.builds(lambda y, w: f"w_{y}_{w}", _year, _week)
_daily = st.builds(lambda y, m, d: f"d_{y}_{m}_{d}", _year, _month, _day)
_unknown = _word | _alias_word


def _with_suffixes(base: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda b, s: b + s, base, _suffixes)


_FAMILIES: dict[str, st.SearchStrategy[str]] = {
    "release": _with_suffixes(_release),
    "candidate": _with_suffixes(_candidate),
    "legacy": _legacy,
    "weekly": _with_suffixes(_weekly),
    "daily": _with_suffixes(_daily),
    "unknown": _with_suffixes(_unknown),
}
_plain_tag = st.one_of(*_FAMILIES.values())
tag_like = st.recursive(_plain_tag, lambda inner: inner.map(lambda t: f"exp_{t}"), max_leaves=4)
"""Strings built from the grammar's pieces, valid and invalid, hitting every rule."""

_family = st.sampled_from(sorted(_FAMILIES)).flatmap(
    lambda name: st.recursive(
        _FAMILIES[name], lambda inner: inner.map(lambda t: f"exp_{t}"), max_leaves=2
    )
)
"""Tags of one family (and their experimental wrappings), so same-type pairs are common."""


def _registry_valid(tag: str) -> bool:
    return _REGISTRY_TAG.fullmatch(tag) is not None


registry_tag = tag_like.filter(_registry_valid) | st.from_regex(_REGISTRY_TAG, fullmatch=True)
"""Tags a registry accepts: ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``."""


# --------------------------------------------------------------------------- parsing


@settings(max_examples=300)
@given(st.text())
@example("")
@example("exp_")
@example("exp_exp_w_2021_22_c0020.001_rsp19_foo-amd64")
@example("w_2021_99")
@example("d_2021_02_30")
@example("r" + "9" * 400 + "_0_0")
def test_parse_tag_never_raises_on_text(text: str) -> None:
    parsed = parse_tag(text)
    assert parsed.tag == (text or "latest")
    assert isinstance(parsed.image_type, ImageType)
    assert isinstance(parsed.display_name, str)


@settings(max_examples=500)
@given(tag_like)
def test_parse_tag_never_raises_on_grammar_pieces(tag: str) -> None:
    parsed = parse_tag(tag)
    assert parsed.tag == tag
    if parsed.architecture is not None:
        assert _ARCH_NAME.fullmatch(parsed.architecture), parsed.architecture
        assert tag.endswith(f"-{parsed.architecture}")


@settings(max_examples=300)
@given(st.text() | tag_like)
@example("")
@example("latest_weekly_c0046-arm64")
def test_parse_alias_tag_never_raises(text: str) -> None:
    parsed = parse_alias_tag(text)
    assert parsed.tag == text
    assert parsed.image_type is ImageType.ALIAS


def _is_type(image_type: ImageType) -> Callable[[ParsedTag], bool]:
    return lambda parsed: parsed.image_type is image_type


_COVERAGE: dict[str, Callable[[ParsedTag], bool]] = {
    **{
        f"type {t.value}": _is_type(t)
        for t in ImageType
        if t is not ImageType.ALIAS  # only configuration or resolution makes an Alias
    },
    "legacy release": lambda p: (
        p.image_type is ImageType.RELEASE and p.build is None and len(p.tag) == 4
    ),
    "invalid weekly date falls through": lambda p: (
        p.tag.startswith("w_") and p.image_type is ImageType.UNKNOWN
    ),
    "invalid daily date falls through": lambda p: (
        p.tag.startswith("d_") and p.image_type is ImageType.UNKNOWN
    ),
    "cycle with build": lambda p: p.cycle_build is not None,
    "unknown with bare cycle": lambda p: p.cycle is not None and p.cycle_build is None,
    "rsp build": lambda p: p.build is not None,
    "extra": lambda p: p.extra is not None,
    "known architecture": lambda p: p.architecture in KNOWN_ARCHITECTURES,
    "v-variant architecture": lambda p: p.architecture is not None and "v" in p.architecture,
    "unknown architecture left in the name": lambda p: (
        p.architecture is None and any(p.tag.endswith(f"-{a}") for a in _UNKNOWN_ARCHES if a)
    ),
    "experimental of a versioned tag": lambda p: (
        p.image_type is ImageType.EXPERIMENTAL and p.version is not None
    ),
    "experimental of an unknown tag": lambda p: (
        p.image_type is ImageType.EXPERIMENTAL and p.base is not None
    ),
}


@pytest.mark.parametrize("rule", sorted(_COVERAGE))
def test_tag_strategy_reaches_every_rule(rule: str) -> None:
    """Guard the generator: each grammar rule and suffix is produced (by parse_tag)."""
    check = _COVERAGE[rule]
    found = find(
        tag_like,
        lambda t: check(parse_tag(t)),
        settings=settings(
            max_examples=2000,
            database=None,
            deadline=None,
            derandomize=True,
            phases=[Phase.generate],
        ),
    )
    assert check(parse_tag(found))


# --------------------------------------------------------------------------- ordering


def _same_type_groups(tags: Sequence[ParsedTag]) -> list[list[ParsedTag]]:
    groups: dict[ImageType, list[ParsedTag]] = {}
    for tag in tags:
        groups.setdefault(tag.image_type, []).append(tag)
    return list(groups.values())


_tag_lists = st.lists(_family, min_size=2, max_size=7) | st.lists(tag_like, min_size=2, max_size=7)


@settings(max_examples=200)
@given(_tag_lists, st.booleans())
def test_sort_key_is_a_total_order_within_a_type(texts: list[str], as_alias: bool) -> None:
    parse = parse_alias_tag if as_alias else parse_tag
    # Parse each string twice: distinct objects with the same tag must compare equal.
    tags = [parse(t) for t in texts] + [parse(t) for t in texts]
    for group in _same_type_groups(tags):
        for a, b in itertools.product(group, repeat=2):
            lt, gt = a.sort_key < b.sort_key, b.sort_key < a.sort_key
            eq = a.sort_key == b.sort_key
            assert lt + gt + eq == 1, (a.tag, b.tag)  # trichotomy, hence antisymmetry
            assert eq == (a == b) == (a.tag == b.tag), (a.tag, b.tag)
            assert (hash(a) == hash(b)) or not eq
        for a, b, c in itertools.product(group, repeat=3):
            if a.sort_key < b.sort_key and b.sort_key < c.sort_key:
                assert a.sort_key < c.sort_key, (a.tag, b.tag, c.tag)


@settings(max_examples=120)
@given(st.lists(tag_like | _family, max_size=12), st.randoms(use_true_random=False))
def test_display_order_is_independent_of_input_order(texts: list[str], rnd: Random) -> None:
    tags = [parse_tag(t) for t in dict.fromkeys(texts)]
    shuffled = list(tags)
    rnd.shuffle(shuffled)
    assert [t.tag for t in sorted_newest_first(tags)] == [
        t.tag for t in sorted_newest_first(shuffled)
    ]
    ranks = [t.image_type.rank for t in sorted_newest_first(tags)]
    assert ranks == sorted(ranks)


_registry_lists = st.lists(
    st.sampled_from(sorted(_FAMILIES)).flatmap(
        lambda name: _FAMILIES[name].filter(_registry_valid)
    ),
    min_size=2,
    max_size=7,
) | st.lists(registry_tag, min_size=2, max_size=7)


@settings(max_examples=200, suppress_health_check=[HealthCheck.filter_too_much])
@given(_registry_lists, st.booleans())
@example(["r21_0_1_rsp103_foo-amd64", "r21_0_1_rsp103_foo"], False)
@example(["r1_0_0_rc2", "r1_0_0_rc10"], False)
@example(["w_2021_022", "w_2021_22"], False)
@example(["a", "a_", "a-"], False)
def test_sort_text_orders_like_sort_key(texts: list[str], as_alias: bool) -> None:
    """``sort_text`` compared as Python strings (= ``COLLATE "C"``) matches ``sort_key``."""
    parse = parse_alias_tag if as_alias else parse_tag
    tags = [parse(t) for t in texts]
    for group in _same_type_groups(tags):
        for a, b in itertools.product(group, repeat=2):
            by_text = sort_text(a) < sort_text(b)
            by_key = a.sort_key < b.sort_key
            assert by_text == by_key, (a.tag, b.tag, sort_text(a), sort_text(b))
            assert (sort_text(a) == sort_text(b)) == (a.tag == b.tag)


# --------------------------------------------------------------------------- collections

_DIGESTS = tuple(f"sha256:{c * 8}" for c in "012345")
_SIZES = {d: 1000 + i for i, d in enumerate(_DIGESTS)}
_ALIAS_POOL = ("recommended", "latest_weekly", "recommended_c0050", "latest-amd64")
_typed_tag = st.one_of(
    st.one_of(_release, _weekly, _daily, _candidate),
    st.one_of(_release, _weekly, _daily, _candidate),
    st.one_of(_FAMILIES["release"], _FAMILIES["weekly"], _FAMILIES["daily"]),
).filter(_registry_valid)
"""Mostly plain releases, weeklies, dailies and candidates; some with suffixes."""


@st.composite
def tag_entries(draw: st.DrawFn) -> list[TagEntry]:
    """Distinct tags; digests from a small pool so that many tags share one."""
    texts = draw(
        st.lists(
            _typed_tag | _typed_tag | st.sampled_from(_ALIAS_POOL) | registry_tag,
            min_size=1,
            max_size=20,
            unique=True,
        )
    )
    digest = st.sampled_from(_DIGESTS) | st.sampled_from(_DIGESTS) | st.none()
    size = st.none() | st.integers(1, 10**9)
    return [TagEntry(text, draw(digest), draw(size)) for text in texts]


def _image_facts(image: Image) -> tuple[object, ...]:
    """Everything an image carries (ParsedTag equality alone compares only the tag)."""
    return (
        attrs.astuple(image.parsed),
        image.digest,
        image.size,
        tuple(sorted(image.aliases)),
        image.alias_target,
    )


def _collection_facts(collection: ImageCollection) -> tuple[object, ...]:
    def facts(images: Sequence[Image]) -> tuple[object, ...]:
        return tuple(_image_facts(i) for i in images)

    return (
        facts(collection.images),
        facts(collection.listing()),
        facts(collection.listing(hide_aliased=True)),
        facts(collection.listing(hide_resolved_aliases=True)),
        facts(collection.listing(include_arch=True)),
        tuple((d, _image_facts(i)) for d, i in collection.digests().items()),
    )


@settings(max_examples=150, deadline=None)
@given(
    tag_entries().flatmap(lambda e: st.tuples(st.just(e), st.permutations(e))),
    st.sampled_from([(), ("recommended",), ("recommended", "latest_weekly", "latest-amd64")]),
    st.none() | st.sampled_from([50, 20]),
)
def test_collection_is_independent_of_entry_order(
    pair: tuple[list[TagEntry], list[TagEntry]],
    alias_tags: tuple[str, ...],
    cycle: int | None,
) -> None:
    entries, permuted = pair
    one = build_collection(parse_entries(entries, alias_tags, cycle))
    two = build_collection(parse_entries(permuted, alias_tags, cycle))
    assert _collection_facts(one) == _collection_facts(two)


# --------------------------------------------------------------------------- views

_LABELS: tuple[dict[str, str], ...] = (
    {"pool": "lab"},
    {"pool": "lab", "zone": "a"},
    {"pool": "other"},
    {},
)
_TAINTS = (
    Taint("dedicated", "NoSchedule", "lab"),
    Taint("dedicated", "NoSchedule", "other"),
    Taint("maintenance", "NoExecute"),
    Taint("spot", "PreferNoSchedule"),
)
_TOLERATIONS = (
    Toleration("dedicated", "Equal", "lab", "NoSchedule"),
    Toleration("maintenance", "Exists", toleration_seconds=30),
    Toleration(None, "Exists"),
)


@st.composite
def nodes(draw: st.DrawFn) -> list[Node]:
    """Nodes with distinct names; a digest has one size on every node."""
    names = draw(
        st.lists(st.integers(0, 30).map(lambda i: f"node{i:02d}"), unique=True, max_size=7)
    )
    return [
        Node(
            name=name,
            labels=draw(st.sampled_from(_LABELS)),
            taints=tuple(draw(st.lists(st.sampled_from(_TAINTS), unique=True, max_size=2))),
            digests={d: _SIZES[d] for d in draw(st.sets(st.sampled_from(_DIGESTS)))},
        )
        for name in names
    ]


@st.composite
def configs(draw: st.DrawFn, entries: Sequence[TagEntry]) -> Config:
    """A configuration whose pins and recommended tag often name existing tags."""
    existing = [e.tag for e in entries]
    known = st.sampled_from(existing) if existing else st.sampled_from(_ALIAS_POOL)
    docker = draw(st.booleans())
    source: DockerSource | GoogleSource = (
        DockerSource("lab/sketchbook", "registry.test")
        if docker
        else GoogleSource("us-central1", "project", "repo", "image")
    )
    images = ImagesConfig(
        source=source,
        recommended_tag=draw(st.sampled_from(_ALIAS_POOL) | known),
        num_releases=draw(st.integers(0, 3)),
        num_weeklies=draw(st.integers(0, 3)),
        num_dailies=draw(st.integers(0, 3)),
        cycle=draw(st.none() | st.just(50)),
        pin=tuple(draw(st.lists(known, max_size=3))),
        alias_tags=tuple(draw(st.lists(st.sampled_from(_ALIAS_POOL) | known, max_size=2))),
    )
    filters = st.builds(
        ImageFilter,
        number=st.none() | st.integers(0, 3),
        age=st.none() | st.sampled_from([timedelta(days=14), timedelta(days=400)]),
        cutoff_build=st.none() | st.integers(0, 50),
        cutoff_version=st.none() | st.just("21.0.0"),
    )
    dropdown = DropdownPolicy(
        release=draw(filters), weekly=draw(filters), daily=draw(filters), experimental=draw(filters)
    )
    lab = LabConfig(
        node_selector=draw(st.sampled_from([{}, {"pool": "lab"}])),
        tolerations=tuple(draw(st.lists(st.sampled_from(_TOLERATIONS), max_size=2))),
    )
    return Config(images=images, dropdown_menu=dropdown, lab=lab)


_NOW = datetime(2022, 6, 1, 12, tzinfo=UTC)


def _plan_facts(plan: Sequence[PrepullRequest]) -> tuple[object, ...]:
    return tuple((_image_facts(r.image), r.node, r.reference) for r in plan)


def _view_outputs(view: ImageCatalog, dropdown: DropdownPolicy) -> tuple[object, ...]:
    return (
        _collection_facts(view.collection),
        _collection_facts(view.prepull_set),
        view.spawner_images(),
        view.menu_images(dropdown, _NOW),
        view.prepuller_images(),
        view.node_statuses(),
        _plan_facts(view.prepull_plan()),
    )


Scenario = tuple[Config, list[TagEntry], list[Node], list[TagEntry], list[Node]]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A configuration, entries and nodes, and a permutation of each."""
    entries = draw(tag_entries())
    node_list = draw(nodes())
    config = draw(configs(entries))
    permuted = draw(st.permutations(entries)), draw(st.permutations(node_list))
    return config, entries, node_list, *permuted


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.sampled_from(get_args(DigestKnowledge)))
def test_view_outputs_are_independent_of_entry_and_node_order(
    scenario: Scenario, digests: DigestKnowledge
) -> None:
    config, entries, node_list, entries2, nodes2 = scenario
    one = evaluate(config, entries, node_list, digests)
    two = evaluate(config, entries2, nodes2, digests)
    assert one.candidates == two.candidates
    assert _view_outputs(one.view, config.dropdown_menu) == _view_outputs(
        two.view, config.dropdown_menu
    )


# --------------------------------------------------------------------------- prepull set


@settings(max_examples=200)
@given(
    st.lists(registry_tag | _family | st.sampled_from(_ALIAS_POOL), unique=True, max_size=25),
    st.data(),
)
def test_prepull_candidates_are_distinct_and_never_arch_specific(
    texts: list[str], data: st.DataObject
) -> None:
    """Precondition: distinct tags, as a repository holds them."""
    tags = [parse_tag(t) for t in texts]
    named = st.sampled_from(texts) if texts else st.sampled_from(_ALIAS_POOL)
    policy = PrepullPolicy(
        recommended_tag=data.draw(st.sampled_from(_ALIAS_POOL) | named),
        num_releases=data.draw(st.integers(0, 4)),
        num_weeklies=data.draw(st.integers(0, 4)),
        num_dailies=data.draw(st.integers(0, 4)),
        pin=tuple(data.draw(st.lists(named, max_size=4))),
    )
    chosen = prepull_candidates(tags, policy)
    by_tag = {t.tag: t for t in tags}
    assert len(chosen) == len(set(chosen))
    assert set(chosen) <= set(by_tag)
    assert not any(by_tag[t].is_arch_specific for t in chosen)


# --------------------------------------------------------------------------- known failures


def test_deeply_nested_experimental_does_not_recurse() -> None:
    """Each ``exp_`` prefix once cost two stack frames; ~500 levels exhausted the stack."""
    parsed = parse_tag("exp_" * 600 + "x")
    assert parsed.image_type is ImageType.EXPERIMENTAL
    assert parsed.display_name == "Experimental " * 600 + "x"


def test_alias_tag_with_a_cycle_beyond_the_int_digit_limit() -> None:
    """``int()`` refuses more than 4,300 digits: such a suffix is no cycle."""
    parsed = parse_alias_tag("latest_c" + "1" * 5000)
    assert parsed.image_type is ImageType.ALIAS
    assert parsed.cycle is None


def test_prepuller_image_size_does_not_depend_on_node_order() -> None:
    """Two nodes report different sizes for one digest: status shows the first node's."""
    entries = [TagEntry("w_2077_43", "sha256:aa")]
    policy = PrepullPolicy()
    collection = build_collection(parse_entries(entries))
    first = Node("node1", digests={"sha256:aa": 100})
    second = Node("node2", digests={"sha256:aa": 200})

    def size(order: list[Node]) -> int | None:
        repository = Repository("registry.test", "lab/sketchbook")
        view = make_view(repository, collection, ["w_2077_43"], policy, order, {}, ())
        return view.prepuller_images().prepulled[0].size

    assert size([first, second]) == size([second, first])
