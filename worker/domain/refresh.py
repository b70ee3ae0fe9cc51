"""Refresh decisions: which tags to HEAD, and what a registry observation means as events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from worker.domain.tags import sorted_newest_first

__all__ = [
    "HeadFailed",
    "HeadFound",
    "HeadMissing",
    "HeadResult",
    "RefreshCost",
    "RefreshOutcome",
    "decide_refresh",
    "tags_to_head",
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
class RefreshCost:
    """What a refresh cost: requests by method and status, retries, bytes, rate limits."""

    requests: tuple[RequestCount, ...] = ()
    retries: int = 0
    bytes_received: int = 0
    rate_limits: Mapping[str, str] = field(factory=dict)


@frozen
class RefreshOutcome:
    """The events a refresh appends and the tags it could not verify."""

    events: tuple[Event, ...]
    flagged: tuple[str, ...]

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

    New tags are discovered (with their digest when fetched), vanished tags and tags whose
    manifest is gone are removed, changed digests move, first digests resolve. A tag whose
    HEAD failed keeps its last known digest and is flagged. A refresh that changes nothing
    appends only the summary.
    """
    changes = _TagChanges(repository.registry, repository.repository, finished_at)
    for tag in dict.fromkeys(listed):
        changes.observe(tag, tag in known, known.get(tag), heads.get(tag))
    listed_set = set(listed)
    for tag, last in sorted(known.items()):
        if tag not in listed_set:
            changes.remove(tag, last)
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
    return RefreshOutcome((*changes.events, summary), tuple(changes.flagged))


class _TagChanges:
    """Accumulates the tag events of one refresh."""

    def __init__(self, registry: str, repository: str, at: datetime) -> None:
        self.registry = registry
        self.repository = repository
        self.at = at
        self.events: list[Event] = []
        self.flagged: list[str] = []
        self.present = 0

    def count(self, kind: type) -> int:
        return sum(1 for e in self.events if isinstance(e, kind))

    def remove(self, tag: str, last: str | None) -> None:
        self.events.append(
            TagRemoved(
                registry=self.registry,
                repository=self.repository,
                tag=tag,
                last_digest=last,
                occurred_at=self.at,
            )
        )

    def observe(
        self, tag: str, is_known: bool, last: str | None, result: HeadResult | None
    ) -> None:
        if isinstance(result, HeadFailed):
            self.flagged.append(tag)
        if isinstance(result, HeadMissing):
            if is_known:
                self.remove(tag, last)
            return
        self.present += 1
        digest = result.digest if isinstance(result, HeadFound) else None
        where = (self.registry, self.repository)
        if not is_known:
            self.events.append(
                TagDiscovered(
                    registry=where[0],
                    repository=where[1],
                    tag=tag,
                    digest=digest,
                    occurred_at=self.at,
                )
            )
        elif digest is not None and last is None:
            self.events.append(
                TagResolved(
                    registry=where[0],
                    repository=where[1],
                    tag=tag,
                    digest=digest,
                    occurred_at=self.at,
                )
            )
        elif digest is not None and last is not None and digest != last:
            self.events.append(
                TagMoved(
                    registry=where[0],
                    repository=where[1],
                    tag=tag,
                    old_digest=last,
                    new_digest=digest,
                    occurred_at=self.at,
                )
            )
