"""Projection rows and state: what the event fold reads and writes, as plain values.

Each row class is one ``ledger`` table; ``row.key`` is its primary key. ``StateView`` is
read access to current rows; ``LedgerState`` holds every row in memory (the pure fold's
state, and what tests compare the database with).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeAlias, TypeVar

import attrs
from attrs import field, frozen

from worker.domain.events import RequestCount
from worker.domain.nodes import Taint, Toleration
from worker.domain.policy import DropdownPolicy, PrepullPolicy

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
]

TagKey: TypeAlias = tuple[str, str, str]
IntervalKey: TypeAlias = tuple[str, str, str, int]
NodeImageKey: TypeAlias = tuple[str, str]
RepoKey: TypeAlias = tuple[str, str]


@frozen
class TagRow:
    """A tag of a repository: its current (or last) digest; removed tags keep their row."""

    registry: str
    repository: str
    tag: str
    digest: str | None
    first_seen_at: datetime
    changed_at: datetime
    removed_at: datetime | None
    history_seq: int

    @property
    def key(self) -> TagKey:
        """(registry, repository, tag)."""
        return (self.registry, self.repository, self.tag)


@frozen
class TagInterval:
    """One stretch of a tag's history: the digest it named from ``valid_from`` on."""

    registry: str
    repository: str
    tag: str
    seq: int
    digest: str | None
    valid_from: datetime
    valid_until: datetime | None

    @property
    def key(self) -> IntervalKey:
        """(registry, repository, tag, seq)."""
        return (self.registry, self.repository, self.tag, self.seq)


@frozen
class NodeRow:
    """A node: its newest labels, taints and eligibility, and inventory bookkeeping."""

    node: str
    first_seen_at: datetime
    labels: Mapping[str, str] = field(factory=dict)
    taints: tuple[Taint, ...] = ()
    eligible: bool = False
    comment: str | None = None
    seen_at: datetime | None = None
    gone_at: datetime | None = None
    last_inventory_at: datetime | None = None
    last_complete_at: datetime | None = None
    truncated: bool | None = None
    image_count: int | None = None

    @property
    def key(self) -> str:
        """The node name."""
        return self.node

    @property
    def active(self) -> bool:
        """Whether the node counts for prepull status: eligible and not gone."""
        return self.eligible and self.gone_at is None


@frozen
class NodeImageRow:
    """What is known of one digest on one node: presence and prepull attempts."""

    node: str
    digest: str
    present: bool | None = None
    observed_at: datetime | None = None
    source: str | None = None
    size_bytes: int | None = None
    present_since: datetime | None = None
    prepull_state: str | None = None
    prepull_requests: int = 0
    prepull_failures: int = 0
    prepull_failures_total: int = 0
    prepull_requested_at: datetime | None = None
    prepull_deadline: datetime | None = None
    prepull_finished_at: datetime | None = None
    prepull_reason: str | None = None
    registry: str | None = None
    repository: str | None = None
    tag: str | None = None

    @property
    def key(self) -> NodeImageKey:
        """(node, digest)."""
        return (self.node, self.digest)


@frozen
class PresenceRow:
    """How many eligible, current nodes hold a digest."""

    digest: str
    eligible_nodes: int

    @property
    def key(self) -> str:
        """The digest."""
        return self.digest


@frozen
class RefreshRow:
    """One refresh of a repository: its outcome and cost."""

    refresh_id: str
    registry: str
    repository: str
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    tags_total: int | None = None
    discovered: int = 0
    resolved: int = 0
    moved: int = 0
    removed: int = 0
    requests: tuple[RequestCount, ...] = ()
    retries: int = 0
    bytes_received: int = 0
    duration_seconds: float | None = None
    flagged_tags: tuple[str, ...] = ()
    rate_limits: Mapping[str, str] = field(factory=dict)
    reason: str | None = None

    @property
    def key(self) -> str:
        """The refresh id."""
        return self.refresh_id


@frozen
class PolicyRow:
    """The policy in force for a repository."""

    registry: str
    repository: str
    configured_at: datetime
    prepull: PrepullPolicy
    dropdown: DropdownPolicy
    node_selector: Mapping[str, str]
    tolerations: tuple[Toleration, ...]

    @property
    def key(self) -> RepoKey:
        """(registry, repository)."""
        return (self.registry, self.repository)


Row: TypeAlias = (
    TagRow | TagInterval | NodeRow | NodeImageRow | PresenceRow | RefreshRow | PolicyRow
)
"""A projection row; ``type(row)`` names its table and ``row.key`` its primary key."""


R = TypeVar("R", TagRow, TagInterval, NodeRow, NodeImageRow, PresenceRow, RefreshRow, PolicyRow)


class StateView:
    """Read access to the current projection rows: one table of rows by key per row class.

    A state implements ``table`` and ``digests_on``; the fold reads through ``row`` and
    ``node_images_of``.
    """

    __slots__ = ()

    def table(self, cls: type[R]) -> Mapping[Any, R]:
        """Every row of one class, by key."""
        raise NotImplementedError

    def digests_on(self, node: str) -> Iterable[str]:
        """The digests of a node's (node, digest) rows."""
        raise NotImplementedError

    def row(self, cls: type[R], key: Any) -> R | None:
        """The row of class ``cls`` with key ``key``, if there is one."""
        return self.table(cls).get(key)

    def node_images_of(self, node: str) -> list[NodeImageRow]:
        """Every (node, digest) row of a node, by digest."""
        table = self.table(NodeImageRow)
        return [table[(node, d)] for d in sorted(self.digests_on(node))]


# --------------------------------------------------------------------------- in-memory state


def _dict() -> dict[Any, Any]:
    return {}


_TABLES: dict[type[Any], str] = {
    TagRow: "tags",
    TagInterval: "tag_history",
    NodeRow: "nodes",
    NodeImageRow: "node_images",
    PresenceRow: "presence_counts",
    RefreshRow: "refreshes",
    PolicyRow: "policies",
}


@frozen
class LedgerState(StateView):
    """Every projection row in memory, keyed as in the database."""

    tags: dict[TagKey, TagRow] = field(factory=_dict)
    tag_history: dict[IntervalKey, TagInterval] = field(factory=_dict)
    nodes: dict[str, NodeRow] = field(factory=_dict)
    node_images: dict[NodeImageKey, NodeImageRow] = field(factory=_dict)
    presence_counts: dict[str, PresenceRow] = field(factory=_dict)
    refreshes: dict[str, RefreshRow] = field(factory=_dict)
    policies: dict[RepoKey, PolicyRow] = field(factory=_dict)
    _by_node: dict[str, set[str]] = field(factory=_dict, repr=False, eq=False)

    def table(self, cls: type[R]) -> dict[Any, R]:
        return getattr(self, _TABLES[cls])  # type: ignore[no-any-return]

    def digests_on(self, node: str) -> Iterable[str]:
        return self._by_node.get(node, ())

    def tables(self) -> dict[type[Any], dict[Any, Any]]:
        """Each row class with its rows by key."""
        return {cls: getattr(self, name) for cls, name in _TABLES.items()}

    def copy(self) -> LedgerState:
        """An independent copy (rows are immutable and shared; the index sets are not)."""
        tables = {a.name: dict(getattr(self, a.name)) for a in attrs.fields(LedgerState)}
        tables["_by_node"] = {node: set(digests) for node, digests in self._by_node.items()}
        return LedgerState(**{name.lstrip("_"): table for name, table in tables.items()})

    def put(self, row: Row) -> None:
        """Store a row; only ``fold`` and ``evolve`` call this, on a private copy. A
        presence count of zero is no row (as a rebuild, counting from the rows, has it)."""
        if isinstance(row, PresenceRow) and row.eligible_nodes == 0:
            self.presence_counts.pop(row.key, None)
            return
        getattr(self, _TABLES[type(row)])[row.key] = row
        if isinstance(row, NodeImageRow):
            self._by_node.setdefault(row.node, set()).add(row.digest)
