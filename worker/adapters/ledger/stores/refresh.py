"""The refresh's view of the event log: current tags, the refresh lock, one-transaction writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from attrs import evolve, frozen
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.derived import (
    ImageRow,
    MenuRow,
    PrepullTargetRow,
    gating,
    image_rows,
    log_head,
    menu_rows,
    offer_of,
    offers,
    replace_images,
    replace_menu,
    replace_prepull_targets,
    stored_rows,
    target_rows,
)
from worker.adapters.ledger.eventlog import EventLog, LedgerTransaction, NewEvent
from worker.adapters.ledger.outbox import write_outbox
from worker.adapters.ledger.projections import fetch_keyed
from worker.adapters.ledger.rows import CODECS
from worker.converter import converter
from worker.domain.changes import ChangeRule, ImagesState, Offer, images_state
from worker.domain.events import Event, PolicyConfigured, RefreshCompleted, RefreshFailed
from worker.domain.images import Repository
from worker.domain.menu import ImageCatalog
from worker.domain.policy import DropdownPolicy
from worker.domain.projection import PolicyRow

__all__ = ["LedgerRefreshStore", "refresh_lock_key"]

_KNOWN = text(
    "SELECT tag, digest FROM ledger.tags "
    "WHERE registry = :registry AND repository = :repository AND removed_at IS NULL"
)


def refresh_lock_key(repository: Repository) -> str:
    """The advisory-lock name that serializes refreshes of one repository."""
    return f"imageledger.refresh:{repository}"


def _event_key(prefix: str, event: Event) -> str:
    """Deterministic per refresh: a redelivered request cannot append its facts twice."""
    if isinstance(event, RefreshCompleted | RefreshFailed | PolicyConfigured):
        return f"{prefix}:{event.TYPE}"
    tag = getattr(event, "tag", "")
    return f"{prefix}:{event.TYPE}:{tag}"


class LedgerRefreshStore:
    """Implements the refresh service's ``RefreshLedger`` port on PostgreSQL."""

    def __init__(self, engine: AsyncEngine, log: EventLog, dropdown: DropdownPolicy) -> None:
        self._engine = engine
        self._log = log
        self._dropdown = dropdown

    @asynccontextmanager
    async def exclusive(self, repository: Repository) -> AsyncIterator[None]:
        """A session advisory lock on its own connection, held for the whole refresh."""
        key = {"key": refresh_lock_key(repository)}
        async with translate_errors("take the refresh lock"), self._engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(hashtextextended(:key, 0))"), key)
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(
                    text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"), key
                )
                await conn.commit()

    async def known_tags(self, repository: Repository) -> dict[str, str | None]:
        """Current tags and their last known digests."""
        params = {"registry": repository.registry, "repository": repository.repository}
        async with translate_errors("read current tags"), self._engine.connect() as conn:
            rows = await conn.execute(_KNOWN, params)
            return {row.tag: row.digest for row in rows}

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
        """Append the refresh's events and replace the derived rows, in one transaction.

        ``policy`` is recorded first, with its hash, when it differs from the policy in
        force (or none is recorded yet). The derived rows are replaced when the tags
        ``changed``, else only when they differ from those stored (the policy they were
        derived with changed, or the repository has none yet): the spawner API serves
        them. When they are replaced, ``announce`` gets what the spawner saw before and
        sees after (and the log position); the message it returns goes to the outbox.
        """
        async with self._log.transaction() as tx:
            if policy is not None and await _policy_changed(tx, policy):
                events = [_hashed(policy), *events]
            items = [NewEvent(e, _event_key(key_prefix, e), causation) for e in events]
            result = await tx.append(items)
            if view is not None and now is not None:
                rows = _Derived.of(view, self._dropdown, now)
                if changed or not await rows.stored(tx, view.repository):
                    before = await _state(tx, view.repository) if announce else None
                    offer = await rows.replace(tx, view.repository)
                    if announce is not None and before is not None:
                        after = images_state(offer, await gating(tx, offer.gated_digests()))
                        await _announce(tx, before, after, announce)
        return result.appended


@frozen
class _Derived:
    """The rows a catalog derives: images, prepull targets and menu entries."""

    images: list[ImageRow]
    targets: list[PrepullTargetRow]
    menu: list[MenuRow]

    @classmethod
    def of(cls, view: ImageCatalog, dropdown: DropdownPolicy, now: datetime) -> _Derived:
        return cls(image_rows(view.collection), target_rows(view), menu_rows(view, dropdown, now))

    async def stored(self, tx: LedgerTransaction, repository: Repository) -> bool:
        """Whether the repository's stored rows are these."""
        tables = ((self.images, ImageRow), (self.targets, PrepullTargetRow), (self.menu, MenuRow))
        for rows, cls in tables:
            if await stored_rows(tx, repository, cls) != set(rows):
                return False
        return True

    async def replace(self, tx: LedgerTransaction, repository: Repository) -> Offer:
        """Store these rows for the repository; returns the offer they make."""
        await replace_images(tx, repository, self.images)
        await replace_prepull_targets(tx, repository, self.targets)
        await replace_menu(tx, repository, self.menu)
        return offer_of(repository, self.menu, self.targets)


async def _policy_changed(tx: LedgerTransaction, policy: PolicyConfigured) -> bool:
    """Whether ``policy`` differs from the one in force for its repository."""
    async with translate_errors("read the policy in force"):
        key = (policy.registry, policy.repository)
        rows: list[PolicyRow] = await fetch_keyed(tx.driver, CODECS[PolicyRow], [key])
    if not rows:
        return True
    now = (rows[0].prepull, rows[0].dropdown, dict(rows[0].node_selector), rows[0].tolerations)
    return now != (policy.prepull, policy.dropdown, dict(policy.node_selector), policy.tolerations)


def _hashed(policy: PolicyConfigured) -> PolicyConfigured:
    """The event with the sha256 of its policy's canonical JSON (time left out)."""
    data = converter.unstructure(evolve(policy, config_hash=""))
    data.pop("occurred_at", None)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return evolve(policy, config_hash=f"sha256:{digest}")


async def _state(tx: LedgerTransaction, repository: Repository) -> ImagesState:
    """What the spawner sees of the repository's stored offer now."""
    key = (repository.registry, repository.repository)
    offer = (await offers(tx, repository)).get(key, Offer(*key))
    return images_state(offer, await gating(tx, offer.gated_digests()))


async def _announce(
    tx: LedgerTransaction, before: ImagesState, after: ImagesState, announce: ChangeRule
) -> None:
    """Write the message ``announce`` makes of a change (nothing when nothing changed)."""
    if after == before:
        return
    message = announce(before, after, await log_head(tx))
    if message is not None:
        await write_outbox(tx.driver, [message])
