"""Hypothesis strategies for events: any valid event, and streams over a small world."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from worker.domain.events import (
    CachedImage,
    Event,
    NodeGone,
    NodeInventoryObserved,
    NodeSeen,
    PolicyConfigured,
    PrepullFailed,
    PrepullParked,
    PrepullRequested,
    PrepullSucceeded,
    PrepullUnparked,
    RefreshCompleted,
    RefreshFailed,
    RefreshStarted,
    RequestCount,
    TagDiscovered,
    TagMoved,
    TagRemoved,
    TagResolved,
)
from worker.domain.nodes import Taint, Toleration
from worker.domain.policy import DropdownPolicy, ImageFilter, PrepullPolicy

__all__ = ["T0", "any_event", "world_event", "world_events"]

T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
"""An hour or two ago: the world's times (up to T0 + 12 minutes) are before any event is
recorded, as real observations are, so the fold counts them as they are (``as_folded``)."""

# Text that PostgreSQL jsonb stores as is (no NUL, no lone surrogates).
_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
_small = st.integers(min_value=0, max_value=2**31 - 1)
_zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5, minutes=30))]
)
_aware = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=_zones
)
_seconds = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)


def _builds(cls: type[Any], **fields: Any) -> st.SearchStrategy[Any]:
    return st.builds(cls, **fields)


_taint = st.builds(Taint, key=_text, effect=_text, value=st.none() | _text)
_toleration = st.builds(
    Toleration,
    key=st.none() | _text,
    operator=st.sampled_from(["Equal", "Exists"]),
    value=st.none() | _text,
    effect=st.none() | _text,
    toleration_seconds=st.none() | _small,
)
_filter = st.builds(
    ImageFilter,
    number=st.none() | _small,
    age=st.none() | st.integers(0, 10**8).map(lambda s: timedelta(seconds=s)),
    cutoff_build=st.none() | _small,
    cutoff_date=st.none() | _aware,
    cutoff_version=st.none() | st.sampled_from(["1.2.3", "21.0.0", "0.0.1-rc2"]),
)
_requests = st.lists(
    st.builds(
        RequestCount,
        method=st.sampled_from(["GET", "HEAD"]),
        status=st.none() | _small,
        count=_small,
    ),
    max_size=3,
).map(tuple)


def any_event() -> st.SearchStrategy[Event]:
    """Any valid event, with values meant to stress the converter."""
    common: dict[str, Any] = {"occurred_at": _aware}
    repo: dict[str, Any] = {"registry": _text, "repository": _text, **common}
    texts = st.lists(_text, max_size=3).map(tuple)
    return st.one_of(
        _builds(RefreshStarted, refresh_id=_text, **repo),
        _builds(TagDiscovered, tag=_text, digest=st.none() | _text, **repo),
        _builds(TagResolved, tag=_text, digest=_text, **repo),
        _builds(TagMoved, tag=_text, old_digest=_text, new_digest=_text, **repo),
        _builds(TagRemoved, tag=_text, last_digest=st.none() | _text, **repo),
        _builds(
            RefreshCompleted,
            refresh_id=_text,
            started_at=_aware,
            tags_total=_small,
            discovered=_small,
            resolved=_small,
            moved=_small,
            removed=_small,
            requests=_requests,
            retries=_small,
            bytes_received=_small,
            duration_seconds=_seconds,
            flagged_tags=texts,
            rate_limits=st.dictionaries(_text, _text, max_size=2),
            **repo,
        ),
        _builds(
            RefreshFailed,
            refresh_id=_text,
            started_at=_aware,
            reason=_text,
            requests=_requests,
            retries=_small,
            duration_seconds=_seconds,
            **repo,
        ),
        _builds(
            NodeSeen,
            node=_text,
            labels=st.dictionaries(_text, _text, max_size=3),
            taints=st.lists(_taint, max_size=2).map(tuple),
            eligible=st.booleans(),
            comment=st.none() | _text,
            **common,
        ),
        _builds(
            NodeInventoryObserved,
            node=_text,
            appeared=st.lists(
                st.builds(CachedImage, digest=_text, size_bytes=st.none() | _small), max_size=3
            ).map(tuple),
            disappeared=texts,
            truncated=st.booleans(),
            image_count=_small,
            **common,
        ),
        _builds(NodeGone, node=_text, **common),
        _builds(
            PrepullRequested,
            tag=_text,
            digest=_text,
            node=_text,
            attempt=_small,
            deadline=st.none() | _aware,
            **repo,
        ),
        _builds(
            PrepullSucceeded,
            tag=st.none() | _text,
            digest=_text,
            node=_text,
            pod=st.none() | _text,
            **repo,
        ),
        _builds(
            PrepullFailed,
            tag=st.none() | _text,
            digest=_text,
            node=_text,
            reason=_text,
            pod=st.none() | _text,
            **repo,
        ),
        _builds(PrepullParked, digest=_text, node=_text, failures=_small, reason=_text, **repo),
        _builds(PrepullUnparked, digest=_text, node=_text, reason=_text, **repo),
        _builds(
            PolicyConfigured,
            prepull=st.builds(
                PrepullPolicy,
                recommended_tag=_text,
                num_releases=_small,
                num_weeklies=_small,
                num_dailies=_small,
                cycle=st.none() | _small,
                pin=texts,
                alias_tags=texts,
            ),
            dropdown=st.builds(
                DropdownPolicy,
                release=_filter,
                weekly=_filter,
                daily=_filter,
                release_candidate=_filter,
                experimental=_filter,
            ),
            node_selector=st.dictionaries(_text, _text, max_size=2),
            tolerations=st.lists(_toleration, max_size=2).map(tuple),
            **repo,
        ),
    )


# --------------------------------------------------------------------------- a small world
# Few names and few instants, so that streams revisit the same rows, tie on times and
# arrive out of order.

REGISTRY = "registry.test"
REPOSITORIES = ("lsst/sciplat", "lsst/other")
TAGS = ("recommended", "w_2077_43", "w_2077_44", "d_2077_10_23", "r21_0_1", "latest_c0050-arm64")
DIGESTS = tuple(f"sha256:{c * 64}" for c in "abcde")
NODES = ("node1", "node2", "node3", "node4")
REFRESHES = ("refresh-1", "refresh-2", "refresh-3")

_when = st.integers(0, 12).map(lambda m: T0 + timedelta(minutes=m))
_repo = st.sampled_from(REPOSITORIES)
_tag = st.sampled_from(TAGS)
_digest = st.sampled_from(DIGESTS)
_node = st.sampled_from(NODES)
_few_digests = st.lists(_digest, max_size=3, unique=True).map(tuple)


def world_event() -> st.SearchStrategy[Event]:
    """An event over the small world (fixed registry, few repositories, tags, nodes)."""
    repo: dict[str, Any] = {
        "registry": st.just(REGISTRY),
        "repository": _repo,
        "occurred_at": _when,
    }
    prepull: dict[str, Any] = {**repo, "digest": _digest, "node": _node}
    return st.one_of(
        _builds(TagDiscovered, tag=_tag, digest=st.none() | _digest, **repo),
        _builds(TagResolved, tag=_tag, digest=_digest, **repo),
        _builds(TagMoved, tag=_tag, old_digest=_digest, new_digest=_digest, **repo),
        _builds(TagRemoved, tag=_tag, last_digest=st.none() | _digest, **repo),
        _builds(RefreshStarted, refresh_id=st.sampled_from(REFRESHES), **repo),
        _builds(
            RefreshCompleted,
            refresh_id=st.sampled_from(REFRESHES),
            started_at=_when,
            tags_total=st.integers(0, 10),
            moved=st.integers(0, 3),
            requests=st.just((RequestCount("HEAD", 200, 4), RequestCount("GET", None, 1))),
            duration_seconds=st.sampled_from([0.5, 1.25]),
            flagged_tags=st.lists(_tag, max_size=2, unique=True).map(tuple),
            rate_limits=st.sampled_from([{}, {"ratelimit-remaining": "99"}]),
            **repo,
        ),
        _builds(
            RefreshFailed,
            refresh_id=st.sampled_from(REFRESHES),
            started_at=_when,
            reason=st.just("listing failed: 503"),
            **repo,
        ),
        _builds(
            NodeSeen,
            node=_node,
            labels=st.sampled_from([{}, {"pool": "lab"}]),
            taints=st.sampled_from([(), (Taint("gpu", "NoSchedule", "true"),)]),
            eligible=st.booleans(),
            comment=st.none() | st.just("Node is tainted (NoSchedule, gpu = true)"),
            occurred_at=_when,
        ),
        _builds(
            NodeInventoryObserved,
            node=_node,
            appeared=st.lists(
                st.builds(CachedImage, digest=_digest, size_bytes=st.none() | st.integers(1, 9)),
                max_size=3,
                unique_by=lambda i: i.digest,
            ).map(tuple),
            disappeared=_few_digests,
            truncated=st.booleans(),
            image_count=st.integers(0, 50),
            occurred_at=_when,
        ),
        _builds(NodeGone, node=_node, occurred_at=_when),
        _builds(
            PrepullRequested,
            tag=_tag,
            attempt=st.integers(1, 3),
            deadline=st.none() | _when,
            **prepull,
        ),
        _builds(PrepullSucceeded, tag=st.none() | _tag, pod=st.none() | st.just("pod"), **prepull),
        _builds(PrepullFailed, tag=st.none() | _tag, reason=st.just("timeout"), **prepull),
        _builds(PrepullParked, failures=st.integers(1, 5), reason=st.just("5 failures"), **prepull),
        _builds(PrepullUnparked, reason=st.just("operator"), **prepull),
        _builds(
            PolicyConfigured,
            prepull=st.builds(PrepullPolicy, num_weeklies=st.integers(0, 3)),
            node_selector=st.sampled_from([{}, {"pool": "lab"}]),
            **repo,
        ),
    )


def world_events(max_size: int = 40) -> st.SearchStrategy[list[Event]]:
    """A stream of small-world events."""
    return st.lists(world_event(), max_size=max_size)
