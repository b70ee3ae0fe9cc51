"""Refresh decisions: which tags to HEAD, and what a registry observation means as events."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from attrs import field, frozen

from worker.domain.events import (
    Event,
    RefreshCompleted,
    RequestCount,
    TagDiscovered,
    TagMoved,
    TagRemoved,
    TagResolved,
)
from worker.domain.images import Repository, TagEntry, parse_entries
from worker.domain.policy import PrepullPolicy, prepull_candidates
from worker.domain.tags import parse_tag, sorted_newest_first

__all__ = [
    "HeadFailed",
    "HeadFound",
    "HeadMissing",
    "HeadResult",
    "RefreshCost",
    "RefreshOutcome",
    "RemovalLimit",
    "RemovalPlan",
    "decide_refresh",
    "plan_removals",
    "tags_to_head",
    "unlisted_removed",
]


@frozen
class HeadFound:
    """The manifest exists and has this digest."""

    digest: str


@frozen
class HeadMissing:
    """The manifest answered 404: the tag is gone (difference 6)."""


@frozen
class HeadFailed:
    """The digest could not be fetched (retries exhausted, auth, parse errors)."""

    reason: str


HeadResult = HeadFound | HeadMissing | HeadFailed


def tags_to_head(
    known: Mapping[str, str | None],
    listed: Sequence[str],
    policy: PrepullPolicy,
    resolve_budget: int,
    *,
    configured_aliases: frozenset[str] | None = None,
) -> list[str]:
    """The tags whose digest this refresh fetches, in order, each once.

    Always: the prepull candidates and every possible alias (configured aliases, Unknown
    tags), since tags are mutable. Then up to ``resolve_budget`` never-resolved tags,
    newest first, so the whole repository converges to known digests (difference 8).
    Architecture-specific tags are never candidates but do get resolved by the budget.
    """
    aliases = policy.configured_aliases() if configured_aliases is None else configured_aliases
    images = parse_entries([TagEntry(t) for t in listed], aliases, policy.cycle)
    parsed = [i.parsed for i in images]
    chosen = dict.fromkeys(prepull_candidates(parsed, policy))
    ordered = sorted_newest_first(parsed)
    for tag in ordered:
        if tag.image_type.possible_alias:
            chosen.setdefault(tag.tag)
    budget = resolve_budget
    for tag in ordered:
        if budget <= 0:
            break
        if tag.tag not in chosen and known.get(tag.tag) is None:
            chosen[tag.tag] = None
            budget -= 1
    return list(chosen)


@frozen
class RemovalLimit:
    """How many unlisted tags one refresh may remove before it stops trusting the listing:
    ``count`` when given, else ``percent`` of the known tags, never fewer than ``floor``."""

    count: int | None = None
    percent: float = 10.0
    floor: int = 5

    def of(self, known: int) -> int:
        """The limit for a repository of ``known`` current tags."""
        if self.count is not None:
            return self.count
        return max(self.floor, math.ceil(known * self.percent / 100))


@frozen
class RemovalPlan:
    """The known tags a listing left out: those whose own HEAD is asked to confirm the
    removal, and those left unconfirmed (kept and flagged) because there were too many."""

    confirm: tuple[str, ...]
    unconfirmed: tuple[str, ...]


def plan_removals(
    known: Mapping[str, str | None],
    listed: Sequence[str],
    limit: RemovalLimit,
    resolve_budget: int,
) -> RemovalPlan:
    """Which unlisted tags to HEAD before removing them.

    A tag is removed only on its own 404. Up to ``limit`` unlisted tags are all HEADed; a
    listing that would remove more than that is suspect (an empty or truncated answer),
    so only ``resolve_budget`` of them are HEADed and the rest are kept, flagged.
    """
    listed_set = set(listed)
    newest_first = sorted_newest_first(parse_tag(tag) for tag in known)
    unlisted = [t.tag for t in newest_first if t.tag not in listed_set]
    if len(unlisted) <= limit.of(len(known)):
        return RemovalPlan(tuple(unlisted), ())
    budget = max(0, resolve_budget)
    return RemovalPlan(tuple(unlisted[:budget]), tuple(unlisted[budget:]))


def unlisted_removed(known: Mapping[str, str | None], listed: Sequence[str]) -> RemovalPlan:
    """The removals of a complete listing (one that is the whole truth, as Artifact
    Registry's): every known tag it leaves out, none kept unconfirmed."""
    listed_set = set(listed)
    return RemovalPlan(tuple(tag for tag in known if tag not in listed_set), ())


@frozen
class RefreshCost:
    """What a refresh cost: requests by method and status, retries, bytes, rate limits."""

    requests: tuple[RequestCount, ...] = ()
    retries: int = 0
    bytes_received: int = 0
    rate_limits: Mapping[str, str] = field(factory=dict)


@frozen
class RefreshOutcome:
    """The events a refresh appends, the tags it could not verify, and the tags current
    after it (listed or kept, in listing order then the kept unlisted ones)."""

    events: tuple[Event, ...]
    flagged: tuple[str, ...]
    current: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether anything but the summary is appended."""
        return len(self.events) > 1


def decide_refresh(
    repository: Repository,
    known: Mapping[str, str | None],
    listed: Sequence[str],
    heads: Mapping[str, HeadResult],
    *,
    refresh_id: str,
    started_at: datetime,
    finished_at: datetime,
    cost: RefreshCost,
) -> RefreshOutcome:
    """Turn a listing and the HEAD results into tag events plus one summary.

    New tags are discovered (with their digest when fetched), tags whose manifest is gone
    (their own HEAD answered 404) are removed, changed digests move, first digests
    resolve. A known tag the listing left out is removed only on its own 404; found by its
    HEAD it stays, otherwise it stays with its last digest and is flagged. A tag whose
    HEAD failed keeps its last known digest and is flagged. A refresh that changes
    nothing appends only the summary.
    """
    changes = _TagChanges(repository.registry, repository.repository, finished_at)
    for tag in dict.fromkeys(listed):
        changes.observe(tag, tag in known, known.get(tag), heads.get(tag))
    listed_set = set(listed)
    for tag, last in sorted(known.items()):
        if tag in listed_set:
            continue
        result = heads.get(tag)
        if result is None:
            changes.flagged.append(tag)
        changes.observe(tag, True, last, result)
    summary = RefreshCompleted(
        registry=repository.registry,
        repository=repository.repository,
        refresh_id=refresh_id,
        started_at=started_at,
        tags_total=changes.present,
        discovered=changes.count(TagDiscovered),
        resolved=changes.count(TagResolved),
        moved=changes.count(TagMoved),
        removed=changes.count(TagRemoved),
        requests=cost.requests,
        retries=cost.retries,
        bytes_received=cost.bytes_received,
        duration_seconds=(finished_at - started_at).total_seconds(),
        flagged_tags=tuple(changes.flagged),
        rate_limits=dict(cost.rate_limits),
        occurred_at=finished_at,
    )
    return RefreshOutcome((*changes.events, summary), tuple(changes.flagged), tuple(changes.kept))


class _TagChanges:
    """Accumulates the tag events of one refresh."""

    def __init__(self, registry: str, repository: str, at: datetime) -> None:
        self.registry = registry
        self.repository = repository
        self.at = at
        self.events: list[Event] = []
        self.flagged: list[str] = []
        self.kept: list[str] = []
        self.present = 0

    def count(self, kind: type) -> int:
        return sum(1 for e in self.events if isinstance(e, kind))

    def add(self, kind: Callable[..., Event], tag: str, **fields: str | None) -> None:
        """Record a ``kind`` event of ``tag`` in this repository, at this refresh's time."""
        self.events.append(
            kind(
                registry=self.registry,
                repository=self.repository,
                tag=tag,
                occurred_at=self.at,
                **fields,
            )
        )

    def observe(
        self, tag: str, is_known: bool, last: str | None, result: HeadResult | None
    ) -> None:
        if isinstance(result, HeadFailed):
            self.flagged.append(tag)
        if isinstance(result, HeadMissing):
            if is_known:
                self.add(TagRemoved, tag, last_digest=last)
            return
        self.present += 1
        self.kept.append(tag)
        digest = result.digest if isinstance(result, HeadFound) else None
        if not is_known:
            self.add(TagDiscovered, tag, digest=digest)
        elif digest is not None and last is None:
            self.add(TagResolved, tag, digest=digest)
        elif digest is not None and last is not None and digest != last:
            self.add(TagMoved, tag, old_digest=last, new_digest=digest)
