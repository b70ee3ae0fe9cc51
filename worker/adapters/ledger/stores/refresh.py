"""The refresh's view of the event log: current tags, the refresh lock, one-transaction writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from attrs import evolve
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.derived import (
    gating,
    image_rows,
    log_head,
    menu_rows,
    offer_of,
    offers,
    replace_images,
    replace_menu,
    replace_prepull_targets,
    target_rows,
)
from worker.adapters.ledger.eventlog import EventLog, LedgerTransaction, NewEvent
from worker.adapters.ledger.outbox import write_outbox
from worker.adapters.ledger.projections import fetch_keyed
from worker.adapters.ledger.rows import CODECS
from worker.adapters.ledger.statements import Statement
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


_HAS_ROWS = Statement(
    "SELECT 1 FROM ledger.images WHERE registry = :registry AND repository = :repository LIMIT 1"
)


async def _has_rows(tx: LedgerTransaction, repository: Repository) -> bool:
    where = {"registry": repository.registry, "repository": repository.repository}
    return await _HAS_ROWS.fetchval(tx.driver, **where) is not None


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
        force (or none is recorded yet). Unchanged derived rows are left alone unless the
        repository has none yet. When they are replaced, ``announce`` gets what the
        spawner saw before and sees after (and the log position); the message it returns
        goes to the outbox.
        """
        async with self._log.transaction() as tx:
            if policy is not None and await _policy_changed(tx, policy):
                events = [_hashed(policy), *events]
            items = [NewEvent(e, _event_key(key_prefix, e), causation) for e in events]
            result = await tx.append(items)
            if (
                view is not None
                and now is not None
                and (changed or not await _has_rows(tx, view.repository))
            ):
                before = await _state(tx, view.repository) if announce else None
                offer = await self._replace(tx, view, now)
                if announce is not None and before is not None:
                    after = images_state(offer, await gating(tx, offer.gated_digests()))
                    await _announce(tx, before, after, announce)
        return result.appended

    async def _replace(self, tx: LedgerTransaction, view: ImageCatalog, now: datetime) -> Offer:
        """Store the catalog's rows; returns the offer they make."""
        repository = view.repository
        targets, menu = target_rows(view), menu_rows(view, self._dropdown, now)
        await replace_images(tx, repository, image_rows(view.collection))
        await replace_prepull_targets(tx, repository, targets)
        await replace_menu(tx, repository, menu)
        return offer_of(repository, menu, targets)


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
