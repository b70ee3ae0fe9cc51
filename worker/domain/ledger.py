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
- ``PresenceRow`` counts, per digest, the eligible nodes that are not gone and hold it (a
  digest no such node holds has no row);
- a node's labels, taints and eligibility follow its newest ``NodeSeen``/``NodeGone``;
- prepull state follows arrival order; a success is also a presence observation;
- a stored node or prepull event counts as observed no later than its recording plus
  ``FOLD_SKEW`` (``as_folded``), so no time from a wrong clock pins a node.
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
from worker.domain.field_rules import FOLD_SKEW
from worker.domain.inventory import Presence, apply_presence
from worker.domain.projection import (
    LedgerState,
    NodeImageKey,
    NodeImageRow,
    NodeRow,
    PolicyRow,
    PresenceRow,
    R,
    RefreshRow,
    Row,
    StateView,
    TagInterval,
    TagRow,
)

__all__ = ["NODE_EVENTS", "as_folded", "changes", "evolve", "fold", "reads"]

E = TypeVar("E", bound=Event)


def evolve(state: LedgerState, event: Event) -> LedgerState:
    """A new state: ``state`` with ``event`` folded in (``state`` is left unchanged)."""
    return fold([event], state)


def fold(events: Iterable[Event], state: LedgerState | None = None) -> LedgerState:
    """The state after folding ``events`` in order into ``state`` (or an empty state)."""
    result = state.copy() if state is not None else LedgerState()
    for event in events:
        for row in changes(result, event):
            result.put(row)
    return result


def as_folded(event: E, recorded_at: datetime) -> E:
    """The event as the fold counts it, given when the log recorded it: a node or prepull
    event at ``min(occurred_at, recorded_at + FOLD_SKEW)``, in every time it sets."""
    at = recorded_at + FOLD_SKEW
    if event.occurred_at <= at or not isinstance(event, NODE_EVENTS):
        return event
    return attrs.evolve(event, occurred_at=at)


def reads(event: Event) -> tuple[type[Row], Any] | None:
    """The row a repository event's rule starts from, as (row class, key), for an adapter
    to load before folding (a tag's rule also reads the tag's current history interval);
    None for a node event (``NODE_EVENTS``)."""
    if isinstance(event, _TAG_EVENTS):
        return TagRow, (event.registry, event.repository, event.tag)
    if isinstance(event, RefreshStarted | RefreshCompleted | RefreshFailed):
        return RefreshRow, event.refresh_id
    if isinstance(event, PolicyConfigured):
        return PolicyRow, (event.registry, event.repository)
    return None


# --------------------------------------------------------------------------- the rules

_LAYOUTS: dict[type[Any], tuple[Callable[[Any], tuple[Any, ...]], dict[str, int]]] = {}


def replace(row: R, **changes: Any) -> R:
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


def _shared(event: Event, cls: type[R]) -> dict[str, Any]:
    """The fields of ``event`` that rows of ``cls`` have too, by name."""
    return {a.name: getattr(event, a.name) for a in attrs.fields(cls) if hasattr(event, a.name)}


class _Scratch:
    """A view with this event's own changes on top, so one event's steps see each other."""

    def __init__(self, view: StateView) -> None:
        self.view = view
        self.rows: dict[tuple[type[Any], Any], Any] = {}

    def row(self, cls: type[R], key: Any) -> R | None:
        hit: R | None = self.rows.get((cls, key))
        return hit if hit is not None else self.view.row(cls, key)

    def put(self, row: Row) -> None:
        self.rows[(type(row), row.key)] = row

    def node_images_of(self, node: str) -> Iterator[NodeImageRow]:
        seen: set[NodeImageKey] = set()
        for row in self.view.node_images_of(node):
            seen.add(row.key)
            yield self.row(NodeImageRow, row.key) or row
        for (_, key), changed in list(self.rows.items()):
            if isinstance(changed, NodeImageRow) and key[0] == node and key not in seen:
                yield changed

    def add_presence(self, digest: str, delta: int) -> None:
        if delta == 0:
            return
        row = self.row(PresenceRow, digest)
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
    node = s.row(NodeRow, new.node)
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
    old = s.row(NodeImageRow, (node, digest))
    row = old or NodeImageRow(node, digest)
    fields = _presence_changes(row, fact, size)
    if fields is not None:
        _put_image(s, old, replace(row, **fields))


# -- tags, refreshes and policy (repository events)


def _tag_named(s: _Scratch, e: TagDiscovered | TagResolved | TagMoved) -> None:
    """The tag names ``digest`` from now on (a new interval of its history if it changed)."""
    r, repo, tag, at = e.registry, e.repository, e.tag, e.occurred_at
    digest = e.new_digest if isinstance(e, TagMoved) else e.digest
    row = s.row(TagRow, (r, repo, tag))
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
    interval = s.row(TagInterval, (*row.key, row.history_seq))
    if interval is not None and interval.valid_until is None:
        s.put(replace(interval, valid_until=at))


def _tag_removed(s: _Scratch, e: TagRemoved) -> None:
    row = s.row(TagRow, (e.registry, e.repository, e.tag))
    if row is None or row.removed_at is not None:
        return
    _close_interval(s, row, e.occurred_at)
    s.put(replace(row, removed_at=e.occurred_at, changed_at=e.occurred_at))


def _refresh_started(s: _Scratch, e: RefreshStarted) -> None:
    if s.view.row(RefreshRow, e.refresh_id) is None:
        s.put(RefreshRow(e.refresh_id, e.registry, e.repository, "running", e.occurred_at))


def _refresh_finished(s: _Scratch, e: RefreshCompleted | RefreshFailed) -> None:
    """The refresh's row: what the event says of it, by field name, ending now."""
    status = "completed" if isinstance(e, RefreshCompleted) else "failed"
    s.put(RefreshRow(status=status, finished_at=e.occurred_at, **_shared(e, RefreshRow)))


def _policy_configured(s: _Scratch, e: PolicyConfigured) -> None:
    s.put(PolicyRow(configured_at=e.occurred_at, **_shared(e, PolicyRow)))


# -- nodes


def _node_or_new(s: _Scratch, name: str, at: datetime) -> NodeRow:
    row = s.row(NodeRow, name)
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


def _node_life(s: _Scratch, e: NodeSeen | NodeGone) -> None:
    """The newest ``NodeSeen`` / ``NodeGone`` by observation time sets the node's state."""
    old = s.row(NodeRow, e.node)
    row = _node_or_new(s, e.node, e.occurred_at)
    if row.seen_at is None or e.occurred_at >= row.seen_at:
        if isinstance(e, NodeGone):
            row = replace(row, seen_at=e.occurred_at, gone_at=e.occurred_at)
        else:
            seen = _shared(e, NodeRow)
            row = replace(row, **seen, seen_at=e.occurred_at, gone_at=None)
    _put_node(s, old, row)


def _later(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at > current else current


def _inventory(s: _Scratch, e: NodeInventoryObserved) -> None:
    at = e.occurred_at
    old = s.row(NodeRow, e.node)
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
    old = s.row(NodeImageRow, (node, digest))
    _put_image(s, old, replace(old or NodeImageRow(node, digest), **changes))


def _source(
    e: PrepullRequested | PrepullSucceeded | PrepullFailed, row: NodeImageRow | None
) -> dict[str, Any]:
    """The image a prepull names (a pair without a tag keeps the tag it had)."""
    tag = e.tag if e.tag is not None or row is None else row.tag
    return {"registry": e.registry, "repository": e.repository, "tag": tag}


def _prepull_requested(s: _Scratch, e: PrepullRequested) -> None:
    row = s.row(NodeImageRow, (e.node, e.digest))
    _prepull(
        s,
        e.node,
        e.digest,
        prepull_state="requested",
        prepull_requests=(row.prepull_requests if row else 0) + 1,
        prepull_requested_at=e.occurred_at,
        prepull_deadline=e.deadline,
        **_source(e, None),
    )


def _prepull_succeeded(s: _Scratch, e: PrepullSucceeded) -> None:
    old = s.row(NodeImageRow, (e.node, e.digest))
    row = old or NodeImageRow(e.node, e.digest)
    fields = _presence_changes(row, Presence(True, e.occurred_at, "prepull")) or {}
    fields.update(prepull_state="succeeded", prepull_failures=0, **_source(e, row))
    fields.update(prepull_finished_at=e.occurred_at, prepull_reason=None)
    _put_image(s, old, replace(row, **fields))


def _prepull_failed(s: _Scratch, e: PrepullFailed) -> None:
    row = s.row(NodeImageRow, (e.node, e.digest)) or NodeImageRow(e.node, e.digest)
    _prepull(
        s,
        e.node,
        e.digest,
        # A failure reported for a parked pair (a late pod) leaves it parked.
        prepull_state="parked" if row.prepull_state == "parked" else "failed",
        prepull_failures=row.prepull_failures + 1,
        prepull_failures_total=row.prepull_failures_total + 1,
        prepull_finished_at=e.occurred_at,
        prepull_reason=e.reason,
        **_source(e, row),
    )


def _prepull_parked(s: _Scratch, e: PrepullParked) -> None:
    _prepull(s, e.node, e.digest, prepull_state="parked", prepull_reason=e.reason)


def _prepull_unparked(s: _Scratch, e: PrepullUnparked) -> None:
    _prepull(s, e.node, e.digest, prepull_state=None, prepull_failures=0, prepull_reason=e.reason)


_Rule = Callable[[_Scratch, Any], None]
_REPOSITORY_RULES: dict[type[Any], _Rule] = {
    RefreshStarted: _refresh_started,
    TagDiscovered: _tag_named,
    TagResolved: _tag_named,
    TagMoved: _tag_named,
    TagRemoved: _tag_removed,
    RefreshCompleted: _refresh_finished,
    RefreshFailed: _refresh_finished,
    PolicyConfigured: _policy_configured,
}
_NODE_RULES: dict[type[Any], _Rule] = {
    NodeSeen: _node_life,
    NodeInventoryObserved: _inventory,
    NodeGone: _node_life,
    PrepullRequested: _prepull_requested,
    PrepullSucceeded: _prepull_succeeded,
    PrepullFailed: _prepull_failed,
    PrepullParked: _prepull_parked,
    PrepullUnparked: _prepull_unparked,
}
_HANDLERS = {**_REPOSITORY_RULES, **_NODE_RULES}
_TAG_EVENTS = (TagDiscovered, TagResolved, TagMoved, TagRemoved)

NODE_EVENTS: tuple[type[Event], ...] = tuple(_NODE_RULES)
"""The events whose rules touch only node-scoped rows (nodes, node images, presence
counters): the adapters fold these set-based in SQL (``worker.adapters.ledger.nodefold``)."""
