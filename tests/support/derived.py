"""The rows a refresh stores beside its events (images, prepull targets, menu), for tests
that build a ledger from events rather than from a registry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from worker.adapters.ledger.derived import (
    image_rows,
    menu_rows,
    replace_images,
    replace_menu,
    replace_prepull_targets,
    target_rows,
)
from worker.adapters.ledger.eventlog import EventLog
from worker.domain.images import Repository, TagEntry, build_collection, parse_entries
from worker.domain.menu import make_view
from worker.domain.nodes import Node
from worker.domain.policy import DropdownPolicy, PrepullPolicy, prepull_candidates

__all__ = ["store_derived"]


async def store_derived(
    log: EventLog,
    repository: Repository,
    tags: Mapping[str, str | None],
    policy: PrepullPolicy,
    nodes: Sequence[Node],
    now: datetime,
    selector: Mapping[str, str] | None = None,
) -> None:
    """Derive images, prepull targets and the menu from ``tags`` with the domain, as a
    refresh does, and replace the repository's rows in one transaction."""
    entries = [TagEntry(t, d) for t, d in tags.items()]
    collection = build_collection(parse_entries(entries, policy.configured_aliases()))
    candidates = prepull_candidates([i.parsed for i in collection.images], policy)
    view = make_view(repository, collection, candidates, policy, list(nodes), selector or {}, ())
    async with log.transaction() as tx:
        await replace_images(tx, repository, image_rows(collection))
        await replace_prepull_targets(tx, repository, target_rows(view))
        await replace_menu(tx, repository, menu_rows(view, DropdownPolicy(), now))
