"""The refresh use case: list tags, fetch digests, append what changed in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

import structlog
from attrs import frozen

from worker.config import Config
from worker.domain.changes import ChangeRule, ImagesState, images_changed
from worker.domain.errors import SourceUnavailableError
from worker.domain.events import Event, PolicyConfigured, RefreshCompleted, RefreshFailed
from worker.domain.images import Repository, TagEntry
from worker.domain.menu import ImageCatalog
from worker.domain.messages import Outgoing
from worker.domain.refresh import (
    HeadFound,
    HeadMissing,
    HeadResult,
    RefreshCost,
    decide_refresh,
    plan_removals,
    tags_to_head,
    unlisted_removed,
)
from worker.services.evaluate import evaluate

__all__ = ["RefreshLedger", "RefreshReport", "TagSource", "configured_policy", "refresh"]

log = structlog.get_logger("imageledger.refresh")


class TagSource(Protocol):
    """A registry repository seen as a source of tags and digests (one per refresh)."""

    @property
    def repository(self) -> Repository:
        """Which repository this source lists."""

    @property
    def complete(self) -> bool:
        """Whether a listing is the whole truth, digests included (Artifact Registry): every
        listed tag's digest comes with it and a tag it leaves out is gone. Otherwise (a
        Docker tag list) digests take HEADs and removals are confirmed one by one."""

    async def list_tags(self) -> list[str]:
        """Every tag; raises SourceUnavailableError when the listing fails."""

    async def resolve(self, tags: Sequence[str]) -> Mapping[str, HeadResult]:
        """The digest of each tag (or why not), fetched concurrently."""

    def cost(self) -> RefreshCost:
        """Requests made so far by this source."""


class RefreshLedger(Protocol):
    """What the refresh needs of the event log."""

    def exclusive(self, repository: Repository) -> AbstractAsyncContextManager[None]:
        """Hold the refresh lock of a repository (across processes) for the block."""

    async def known_tags(self, repository: Repository) -> dict[str, str | None]:
        """Current tags of the repository and their last known digests."""

    async def record(
        self,
        events: Sequence[Event],
        *,
        key_prefix: str,
        causation: str,
        view: ImageCatalog | None = None,
        now: datetime | None = None,
        changed: bool = True,
        announce: ChangeRule | None = None,
        policy: PolicyConfigured | None = None,
    ) -> int:
        """Append events and replace the derived rows (images, targets, menu) at once.

        ``policy`` (the configuration's policy) is recorded, once, when it differs from
        the one in force.

        Keys derived from ``key_prefix`` make a redelivered request add nothing twice.
        With ``changed`` false the derived rows are written only if there are none yet.
        When they are written, the message ``announce`` makes of what the spawner saw
        before and sees after goes to the outbox in the same transaction.
        """


@frozen
class RefreshReport:
    """What one refresh did, for the CLI and logs."""

    repository: Repository
    summary: RefreshCompleted | RefreshFailed
    appended: int
    failure: str | None = None
    """Why it failed, as one of ``figures.REFRESH_FAILURE_REASONS`` (None: it did not)."""

    @property
    def succeeded(self) -> bool:
        """Whether the listing worked (some digests may still be flagged)."""
        return isinstance(self.summary, RefreshCompleted)


def current_catalog(
    config: Config,
    known: Mapping[str, str | None],
    current: Sequence[str],
    heads: Mapping[str, HeadResult],
) -> ImageCatalog:
    """The collection and prepull set after this refresh (nodes come from the views)."""
    entries = []
    for tag in dict.fromkeys(current):
        result = heads.get(tag)
        if isinstance(result, HeadMissing):
            continue
        digest = result.digest if isinstance(result, HeadFound) else known.get(tag)
        entries.append(TagEntry(tag, digest))
    return evaluate(config, entries, ()).view


async def refresh(
    source: TagSource,
    ledger: RefreshLedger,
    config: Config,
    *,
    refresh_id: str,
    clock: Callable[[], datetime],
    causation: str | None = None,
) -> RefreshReport:
    """Run one refresh of ``source`` and record it.

    Refreshes of one repository never overlap, even across processes. A listing failure
    records ``RefreshFailed`` and keeps the last known state; everything else one refresh
    learned is committed in one transaction.
    """
    images = config.images
    repository = source.repository
    bound = log.bind(
        registry=repository.registry, repository=repository.repository, refresh_id=refresh_id
    )
    async with ledger.exclusive(repository):
        started = clock()
        known = await ledger.known_tags(repository)
        try:
            listed = await source.list_tags()
        except SourceUnavailableError as exc:
            failed = _failed(repository, refresh_id, started, clock(), str(exc), source.cost())
            appended = await ledger.record(
                [failed],
                key_prefix=refresh_id,
                causation=causation or refresh_id,
                policy=configured_policy(config, started),
            )
            bound.warning(
                "refresh failed: cannot list tags",
                reason_class=exc.reason_class,
                requests=sum(r.count for r in failed.requests),
                retries=failed.retries,
                duration_s=round(failed.duration_seconds, 3),
                reason=str(exc),
            )
            return RefreshReport(repository, failed, appended, exc.reason_class)
        if source.complete:
            wanted, removals = list(dict.fromkeys(listed)), unlisted_removed(known, listed)
        else:
            wanted = tags_to_head(known, listed, images.policy(), images.resolve_budget)
            removals = plan_removals(
                known, listed, images.max_removals_unconfirmed, images.resolve_budget
            )
        if removals.unconfirmed:
            bound.warning(
                "listing leaves out more tags than may be removed: removals unconfirmed",
                unlisted=len(removals.confirm) + len(removals.unconfirmed),
                confirming=len(removals.confirm),
                kept=len(removals.unconfirmed),
            )
        heads = await source.resolve([*wanted, *removals.confirm])
        outcome = decide_refresh(
            repository,
            known,
            listed,
            heads,
            refresh_id=refresh_id,
            started_at=started,
            finished_at=clock(),
            cost=source.cost(),
        )
        finished = outcome.events[-1].occurred_at
        view = current_catalog(config, known, outcome.current, heads)
        appended = await ledger.record(
            outcome.events,
            key_prefix=refresh_id,
            causation=causation or refresh_id,
            view=view,
            now=finished,
            changed=outcome.changed or config.dropdown_menu.time_dependent,
            announce=_announcer(finished),
            policy=configured_policy(config, started),
        )
    summary = outcome.events[-1]
    assert isinstance(summary, RefreshCompleted)
    bound.info(
        "refresh completed",
        tags=summary.tags_total,
        discovered=summary.discovered,
        resolved=summary.resolved,
        moved=summary.moved,
        removed=summary.removed,
        flagged=len(summary.flagged_tags),
        heads=len(wanted),
        requests=sum(r.count for r in summary.requests),
        retries=summary.retries,
        duration_s=round(summary.duration_seconds, 3),
    )
    return RefreshReport(repository, summary, appended)


def configured_policy(config: Config, at: datetime) -> PolicyConfigured:
    """The policy the configuration puts in force for its repository, as an event."""
    repository = config.images.repository
    return PolicyConfigured(
        registry=repository.registry,
        repository=repository.repository,
        prepull=config.images.policy(),
        dropdown=config.dropdown_menu,
        node_selector=dict(config.lab.node_selector),
        tolerations=config.lab.tolerations,
        occurred_at=at,
    )


def _announcer(at: datetime) -> ChangeRule:
    """``images_changed`` with the time of the change bound."""

    def announce(before: ImagesState, after: ImagesState, position: int) -> Outgoing | None:
        return images_changed(before, after, position=position, at=at)

    return announce


def _failed(
    repository: Repository,
    refresh_id: str,
    started: datetime,
    finished: datetime,
    reason: str,
    cost: RefreshCost,
) -> RefreshFailed:
    return RefreshFailed(
        registry=repository.registry,
        repository=repository.repository,
        refresh_id=refresh_id,
        started_at=started,
        reason=reason,
        requests=cost.requests,
        retries=cost.retries,
        duration_seconds=(finished - started).total_seconds(),
        occurred_at=finished,
    )
