"""The projection fold: how each event changes the projection rows, in plain Python.

``changes(view, event)`` reads the rows an event touches through a ``StateView`` and returns
their new values; it mutates nothing. ``evolve(state, event)`` and ``fold(events)`` apply it
to an in-memory ``LedgerState``. This is the specification of every projection: the adapters
fold repository events with it directly and node events with set-based SQL
(``worker.adapters.ledger.nodefold``) that the rebuild-parity property test holds to it.

Rules in brief:
- tags keep their history as intervals; a removed tag keeps its row (``removed_at`` set);
- per (node, digest) the newest observation by time wins, ties to the later arrival
  (DOMAIN.md difference 11, ``worker.domain.inventory.apply_presence``); a truncated kubelet
  list never marks an image gone (difference 10);
- ``PresenceRow`` counts, per digest, the eligible nodes that are not gone and hold it;
- a node's labels, taints and eligibility follow its newest ``NodeSeen``/``NodeGone``;
- prepull state follows arrival order; a success is also a presence observation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from operator import attrgetter
from typing import Any, TypeVar

import attrs

from worker.domain.events import (
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
    TagDiscovered,
    TagMoved,
    TagRemoved,
    TagResolved,
)
from worker.domain.inventory import Presence, apply_presence
from worker.domain.projection import (
    IntervalKey,
    LedgerState,
    NodeImageKey,
    NodeImageRow,
    NodeRow,
    PolicyRow,
    PresenceRow,
    RefreshRow,
    RepoKey,
    Row,
    StateView,
    TagInterval,
    TagKey,
    TagRow,
)

__all__ = [
    "IntervalKey",
    "LedgerState",
    "NodeImageKey",
    "NodeImageRow",
    "NodeRow",
    "PolicyRow",
    "PresenceRow",
    "RefreshRow",
    "RepoKey",
    "Row",
    "StateView",
    "TagInterval",
    "TagKey",
    "TagRow",
    "changes",
    "evolve",
    "fold",
]


def evolve(state: LedgerState, event: Event) -> LedgerState:
    """A new state: ``state`` with ``event`` folded in (``state`` is left unchanged)."""
    return fold([event], state)


def fold(events: Iterable[Event], state: LedgerState | None = None) -> LedgerState:
    """The state after folding ``events`` in order into ``state`` (or an empty state)."""
    result = state.copy() if state is not None else LedgerState()
    for event in events:
        for row in changes(result, event):
            result._put(row)
    return result


# --------------------------------------------------------------------------- the rules

_Rows = TypeVar("_Rows", TagRow, TagInterval, NodeRow, NodeImageRow)
_LAYOUTS: dict[type[Any], tuple[Callable[[Any], tuple[Any, ...]], dict[str, int]]] = {}


def replace(row: _Rows, **changes: Any) -> _Rows:
    """A copy of a row with some fields changed (``attrs.evolve``, without its overhead)."""
    cls = type(row)
    layout = _LAYOUTS.get(cls)
    if layout is None:
        names = [a.name for a in attrs.fields(cls)]
        layout = _LAYOUTS[cls] = (attrgetter(*names), {n: i for i, n in enumerate(names)})
    getter, index = layout
    values = list(getter(row))
    for name, value in changes.items():
        values[index[name]] = value
    return cls(*values)


class _Scratch:
    """A view with this event's own changes on top, so one event's steps see each other."""

    def __init__(self, view: StateView) -> None:
        self.view = view
        self.rows: dict[tuple[type[Any], Any], Row] = {}

    def get(self, cls: type[Any], key: Any, read: Callable[[Any], Any]) -> Any:
        hit = self.rows.get((cls, key))
        return hit if hit is not None else read(key)

    def put(self, row: Row) -> None:
        self.rows[(type(row), row.key)] = row

    def node(self, name: str) -> NodeRow | None:
        return self.get(NodeRow, name, self.view.node)  # type: ignore[no-any-return]

    def node_image(self, key: NodeImageKey) -> NodeImageRow | None:
        return self.get(NodeImageRow, key, self.view.node_image)  # type: ignore[no-any-return]

    def node_images_of(self, node: str) -> Iterator[NodeImageRow]:
        seen: set[NodeImageKey] = set()
        for row in self.view.node_images_of(node):
            seen.add(row.key)
            yield self.node_image(row.key) or row
        for (_, key), changed in list(self.rows.items()):
            if isinstance(changed, NodeImageRow) and key[0] == node and key not in seen:
                yield changed

    def add_presence(self, digest: str, delta: int) -> None:
        if delta == 0:
            return
        row = self.get(PresenceRow, digest, self.view.presence)
        count = row.eligible_nodes if row is not None else 0
        self.put(PresenceRow(digest, count + delta))


def changes(view: StateView, event: Event) -> list[Row]:
    """The rows ``event`` changes, with their new values, given the current rows."""
    scratch = _Scratch(view)
    _HANDLERS[type(event)](scratch, event)
    return list(scratch.rows.values())


def _counted(node: NodeRow | None, image: NodeImageRow | None) -> bool:
    return node is not None and node.active and image is not None and image.present is True


def _put_image(s: _Scratch, old: NodeImageRow | None, new: NodeImageRow) -> None:
    node = s.node(new.node)
    s.put(new)
    s.add_presence(new.digest, int(_counted(node, new)) - int(_counted(node, old)))


def _presence_changes(
    row: NodeImageRow, fact: Presence, size: int | None = None
) -> dict[str, Any] | None:
    """The fields a presence fact changes, or None when a newer fact is known (diff. 11)."""
    if row.observed_at is not None and row.present is not None:
        known = {row.digest: Presence(row.present, row.observed_at, row.source or "")}
        if apply_presence(known, row.digest, fact)[row.digest] is not fact:
            return None
    since = row.present_since if row.present else fact.observed_at
    return {
        "present": fact.present,
        "observed_at": fact.observed_at,
        "source": fact.source,
        "size_bytes": size if size is not None else row.size_bytes,
        "present_since": since if fact.present else None,
    }


def _observe(s: _Scratch, node: str, digest: str, fact: Presence, size: int | None = None) -> None:
    """Record a presence fact unless a newer one is known."""
    old = s.node_image((node, digest))
    row = old or NodeImageRow(node, digest)
    fields = _presence_changes(row, fact, size)
    if fields is not None:
        _put_image(s, old, replace(row, **fields))


# -- tags


def _set_digest(s: _Scratch, r: str, repo: str, tag: str, digest: str | None, at: datetime) -> None:
    row: TagRow | None = s.get(TagRow, (r, repo, tag), s.view.tag)
    if row is None:
        s.put(TagRow(r, repo, tag, digest, at, at, None, 1))
        s.put(TagInterval(r, repo, tag, 1, digest, at, None))
        return
    if row.removed_at is None and row.digest == digest:
        return
    _close_interval(s, row, at)
    seq = row.history_seq + 1
    s.put(replace(row, digest=digest, changed_at=at, removed_at=None, history_seq=seq))
    s.put(TagInterval(r, repo, tag, seq, digest, at, None))


def _close_interval(s: _Scratch, row: TagRow, at: datetime) -> None:
    key = (*row.key, row.history_seq)
    interval: TagInterval | None = s.get(TagInterval, key, s.view.interval)
    if interval is not None and interval.valid_until is None:
        s.put(replace(interval, valid_until=at))


def _tag_discovered(s: _Scratch, e: TagDiscovered) -> None:
    _set_digest(s, e.registry, e.repository, e.tag, e.digest, e.occurred_at)


def _tag_resolved(s: _Scratch, e: TagResolved) -> None:
    _set_digest(s, e.registry, e.repository, e.tag, e.digest, e.occurred_at)


def _tag_moved(s: _Scratch, e: TagMoved) -> None:
    _set_digest(s, e.registry, e.repository, e.tag, e.new_digest, e.occurred_at)


def _tag_removed(s: _Scratch, e: TagRemoved) -> None:
    row: TagRow | None = s.get(TagRow, (e.registry, e.repository, e.tag), s.view.tag)
    if row is None or row.removed_at is not None:
        return
    _close_interval(s, row, e.occurred_at)
    s.put(replace(row, removed_at=e.occurred_at, changed_at=e.occurred_at))


# -- refreshes and policy


def _refresh_started(s: _Scratch, e: RefreshStarted) -> None:
    if s.view.refresh(e.refresh_id) is None:
        s.put(RefreshRow(e.refresh_id, e.registry, e.repository, "running", e.occurred_at))


def _refresh_completed(s: _Scratch, e: RefreshCompleted) -> None:
    s.put(
        RefreshRow(
            e.refresh_id,
            e.registry,
            e.repository,
            "completed",
            e.started_at,
            finished_at=e.occurred_at,
            tags_total=e.tags_total,
            discovered=e.discovered,
            resolved=e.resolved,
            moved=e.moved,
            removed=e.removed,
            requests=e.requests,
            retries=e.retries,
            bytes_received=e.bytes_received,
            duration_seconds=e.duration_seconds,
            flagged_tags=e.flagged_tags,
            rate_limits=e.rate_limits,
        )
    )


def _refresh_failed(s: _Scratch, e: RefreshFailed) -> None:
    s.put(
        RefreshRow(
            e.refresh_id,
            e.registry,
            e.repository,
            "failed",
            e.started_at,
            finished_at=e.occurred_at,
            requests=e.requests,
            retries=e.retries,
            duration_seconds=e.duration_seconds,
            reason=e.reason,
        )
    )


def _policy_configured(s: _Scratch, e: PolicyConfigured) -> None:
    s.put(
        PolicyRow(
            e.registry,
            e.repository,
            e.occurred_at,
            e.prepull,
            e.dropdown,
            e.node_selector,
            e.tolerations,
        )
    )


# -- nodes


def _node_or_new(s: _Scratch, name: str, at: datetime) -> NodeRow:
    row = s.node(name)
    if row is None:
        return NodeRow(name, first_seen_at=at)
    return row if row.first_seen_at <= at else replace(row, first_seen_at=at)


def _put_node(s: _Scratch, old: NodeRow | None, new: NodeRow) -> None:
    s.put(new)
    was, now = old is not None and old.active, new.active
    if was == now:
        return
    for image in list(s.node_images_of(new.node)):
        if image.present is True:
            s.add_presence(image.digest, 1 if now else -1)


def _is_newest(seen_at: datetime | None, at: datetime) -> bool:
    return seen_at is None or at >= seen_at


def _node_seen(s: _Scratch, e: NodeSeen) -> None:
    old = s.node(e.node)
    row = _node_or_new(s, e.node, e.occurred_at)
    if _is_newest(row.seen_at, e.occurred_at):
        row = replace(
            row,
            labels=e.labels,
            taints=e.taints,
            eligible=e.eligible,
            comment=e.comment,
            seen_at=e.occurred_at,
            gone_at=None,
        )
    _put_node(s, old, row)


def _node_gone(s: _Scratch, e: NodeGone) -> None:
    old = s.node(e.node)
    row = _node_or_new(s, e.node, e.occurred_at)
    if _is_newest(row.seen_at, e.occurred_at):
        row = replace(row, seen_at=e.occurred_at, gone_at=e.occurred_at)
    _put_node(s, old, row)


def _later(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at > current else current


def _inventory(s: _Scratch, e: NodeInventoryObserved) -> None:
    at = e.occurred_at
    old = s.node(e.node)
    row = _node_or_new(s, e.node, at)
    if row.last_inventory_at is None or at >= row.last_inventory_at:
        row = replace(row, truncated=e.truncated, image_count=e.image_count)
    row = replace(row, last_inventory_at=_later(row.last_inventory_at, at))
    if not e.truncated:
        row = replace(row, last_complete_at=_later(row.last_complete_at, at))
    _put_node(s, old, row)
    for image in e.appeared:
        _observe(s, e.node, image.digest, Presence(True, at, "inventory"), image.size_bytes)
    if not e.truncated:
        for digest in e.disappeared:
            _observe(s, e.node, digest, Presence(False, at, "inventory"))


# -- prepulls


def _prepull(s: _Scratch, node: str, digest: str, **changes: Any) -> None:
    old = s.node_image((node, digest))
    _put_image(s, old, replace(old or NodeImageRow(node, digest), **changes))


def _prepull_requested(s: _Scratch, e: PrepullRequested) -> None:
    row = s.node_image((e.node, e.digest))
    _prepull(
        s,
        e.node,
        e.digest,
        prepull_state="requested",
        prepull_requests=(row.prepull_requests if row else 0) + 1,
        prepull_requested_at=e.occurred_at,
        prepull_deadline=e.deadline,
        registry=e.registry,
        repository=e.repository,
        tag=e.tag,
    )


def _prepull_succeeded(s: _Scratch, e: PrepullSucceeded) -> None:
    old = s.node_image((e.node, e.digest))
    row = old or NodeImageRow(e.node, e.digest)
    fields = _presence_changes(row, Presence(True, e.occurred_at, "prepull")) or {}
    fields.update(
        prepull_state="succeeded",
        prepull_failures=0,
        prepull_finished_at=e.occurred_at,
        prepull_reason=None,
        registry=e.registry,
        repository=e.repository,
        tag=e.tag if e.tag is not None else row.tag,
    )
    _put_image(s, old, replace(row, **fields))


def _prepull_failed(s: _Scratch, e: PrepullFailed) -> None:
    row = s.node_image((e.node, e.digest)) or NodeImageRow(e.node, e.digest)
    _prepull(
        s,
        e.node,
        e.digest,
        prepull_state="failed",
        prepull_failures=row.prepull_failures + 1,
        prepull_failures_total=row.prepull_failures_total + 1,
        prepull_finished_at=e.occurred_at,
        prepull_reason=e.reason,
        registry=e.registry,
        repository=e.repository,
        tag=e.tag if e.tag is not None else row.tag,
    )


def _prepull_parked(s: _Scratch, e: PrepullParked) -> None:
    _prepull(s, e.node, e.digest, prepull_state="parked", prepull_reason=e.reason)


def _prepull_unparked(s: _Scratch, e: PrepullUnparked) -> None:
    _prepull(s, e.node, e.digest, prepull_state=None, prepull_failures=0, prepull_reason=e.reason)


_HANDLERS: dict[type[Any], Callable[[_Scratch, Any], None]] = {
    RefreshStarted: _refresh_started,
    TagDiscovered: _tag_discovered,
    TagResolved: _tag_resolved,
    TagMoved: _tag_moved,
    TagRemoved: _tag_removed,
    RefreshCompleted: _refresh_completed,
    RefreshFailed: _refresh_failed,
    NodeSeen: _node_seen,
    NodeInventoryObserved: _inventory,
    NodeGone: _node_gone,
    PrepullRequested: _prepull_requested,
    PrepullSucceeded: _prepull_succeeded,
    PrepullFailed: _prepull_failed,
    PrepullParked: _prepull_parked,
    PrepullUnparked: _prepull_unparked,
    PolicyConfigured: _policy_configured,
}
