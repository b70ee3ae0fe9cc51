"""The event vocabulary: facts appended to the log, each with a stable stored name and version.

Every event is a frozen attrs class named in the past tense. ``TYPE`` is the name stored in
``ledger.events.type`` and ``VERSION`` the payload version: both are class-level constants,
never Python import paths, and a name is never renamed or reused. A payload of an older
version is upgraded on read (``worker.event_upgrades``). ``occurred_at`` is when the fact was
observed (a value handed in, never ``now()``), always timezone-aware.

Registry events carry the source (``registry`` host and ``repository`` path); node events the
node name; prepull events both. ``stream_of`` names the stream an event belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, TypeAlias

from attrs import field, frozen

from worker.domain.nodes import Taint, Toleration
from worker.domain.policy import DropdownPolicy, PrepullPolicy

__all__ = [
    "EVENT_CLASSES",
    "CachedImage",
    "Event",
    "NodeGone",
    "NodeInventoryObserved",
    "NodeSeen",
    "PolicyConfigured",
    "PrepullFailed",
    "PrepullParked",
    "PrepullRequested",
    "PrepullSucceeded",
    "PrepullUnparked",
    "RefreshCompleted",
    "RefreshFailed",
    "RefreshStarted",
    "RequestCount",
    "TagDiscovered",
    "TagMoved",
    "TagRemoved",
    "TagResolved",
    "event_class",
    "stream_of",
]


def _aware(_: object, attribute: Any, value: Any) -> None:
    if isinstance(value, datetime) and value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be timezone-aware, got {value!r}")


def _occurred_at() -> Any:
    return field(validator=_aware)


@frozen
class RequestCount:
    """How many registry requests with this method ended with this status (None: no answer)."""

    method: str
    status: int | None
    count: int


@frozen
class CachedImage:
    """A digest a kubelet reports on a node, with its size when reported."""

    digest: str
    size_bytes: int | None = None


# --------------------------------------------------------------------------- registry


@frozen(kw_only=True)
class _RepositoryFact:
    """The source every registry, prepull and policy event names: registry host and path."""

    registry: str
    repository: str


@frozen(kw_only=True)
class RefreshStarted(_RepositoryFact):
    """A refresh of one repository began (optional: a no-change refresh records only its end)."""

    TYPE: ClassVar[str] = "refresh.started"
    VERSION: ClassVar[int] = 1
    refresh_id: str
    occurred_at: datetime = _occurred_at()


@frozen(kw_only=True)
class TagDiscovered(_RepositoryFact):
    """A tag appeared in the repository's tag list; its digest when it was resolved at once."""

    TYPE: ClassVar[str] = "tag.discovered"
    VERSION: ClassVar[int] = 1
    tag: str
    digest: str | None
    occurred_at: datetime = _occurred_at()


@frozen(kw_only=True)
class TagResolved(_RepositoryFact):
    """A known tag whose digest was unknown got its first digest (DOMAIN.md difference 8)."""

    TYPE: ClassVar[str] = "tag.resolved"
    VERSION: ClassVar[int] = 1
    tag: str
    digest: str
    occurred_at: datetime = _occurred_at()


@frozen(kw_only=True)
class TagMoved(_RepositoryFact):
    """A tag now points to another digest."""

    TYPE: ClassVar[str] = "tag.moved"
    VERSION: ClassVar[int] = 1
    tag: str
    old_digest: str
    new_digest: str
    occurred_at: datetime = _occurred_at()


@frozen(kw_only=True)
class TagRemoved(_RepositoryFact):
    """A tag left the tag list, or its manifest answered 404 (difference 6)."""

    TYPE: ClassVar[str] = "tag.removed"
    VERSION: ClassVar[int] = 1
    tag: str
    last_digest: str | None
    occurred_at: datetime = _occurred_at()


@frozen(kw_only=True)
class RefreshCompleted(_RepositoryFact):
    """A refresh finished: what it saw, what it changed and what it cost.

    ``flagged_tags`` are tags whose digest could not be verified this time: they keep their
    last known digest (difference 6). ``occurred_at`` is when the refresh ended.
    """

    TYPE: ClassVar[str] = "refresh.completed"
    VERSION: ClassVar[int] = 1
    refresh_id: str
    started_at: datetime = field(validator=_aware)
    tags_total: int
    discovered: int = 0
    resolved: int = 0
    moved: int = 0
    removed: int = 0
    requests: tuple[RequestCount, ...] = ()
    retries: int = 0
    bytes_received: int = 0
    duration_seconds: float = 0.0
    flagged_tags: tuple[str, ...] = ()
    rate_limits: Mapping[str, str] = field(factory=dict)
    occurred_at: datetime = _occurred_at()


@frozen(kw_only=True)
class RefreshFailed(_RepositoryFact):
    """A refresh could not list the repository; the last known state stays."""

    TYPE: ClassVar[str] = "refresh.failed"
    VERSION: ClassVar[int] = 1
    refresh_id: str
    started_at: datetime = field(validator=_aware)
    reason: str
    requests: tuple[RequestCount, ...] = ()
    retries: int = 0
    duration_seconds: float = 0.0
    occurred_at: datetime = _occurred_at()


# --------------------------------------------------------------------------- nodes


@frozen(kw_only=True)
class NodeSeen:
    """A node's labels, taints or eligibility as observed (recorded when they change)."""

    TYPE: ClassVar[str] = "node.seen"
    VERSION: ClassVar[int] = 1
    node: str
    labels: Mapping[str, str] = field(factory=dict)
    taints: tuple[Taint, ...] = ()
    eligible: bool
    comment: str | None = None
    occurred_at: datetime = _occurred_at()


@frozen(kw_only=True)
class NodeInventoryObserved:
    """What changed in a node's kubelet image list, observed at ``occurred_at``.

    ``appeared`` digests are present, ``disappeared`` ones absent; a ``truncated`` list
    (difference 10) proves presence only, so its ``disappeared`` is ignored. ``image_count``
    is the length of the kubelet list.
    """

    TYPE: ClassVar[str] = "node.inventory_observed"
    VERSION: ClassVar[int] = 1
    node: str
    appeared: tuple[CachedImage, ...] = ()
    disappeared: tuple[str, ...] = ()
    truncated: bool = False
    image_count: int = 0
    occurred_at: datetime = _occurred_at()

    @property
    def observed_at(self) -> datetime:
        """When the kubelet list was observed (the event's ``occurred_at``)."""
        return self.occurred_at


@frozen(kw_only=True)
class NodeGone:
    """A node left the cluster (or the node selector)."""

    TYPE: ClassVar[str] = "node.gone"
    VERSION: ClassVar[int] = 1
    node: str
    occurred_at: datetime = _occurred_at()


# --------------------------------------------------------------------------- prepull


@frozen(kw_only=True)
class PrepullRequested(_RepositoryFact):
    """A prepull of ``digest`` on ``node`` was asked for (attempt number, deadline)."""

    TYPE: ClassVar[str] = "prepull.requested"
    VERSION: ClassVar[int] = 1
    tag: str
    digest: str
    node: str
    attempt: int = 1
    deadline: datetime | None = field(default=None, validator=_aware)
    occurred_at: datetime = _occurred_at()


@frozen(kw_only=True)
class PrepullSucceeded(_RepositoryFact):
    """A prepull pod finished successfully: the digest is on the node at ``occurred_at``."""

    TYPE: ClassVar[str] = "prepull.succeeded"
    VERSION: ClassVar[int] = 1
    tag: str | None = None
    digest: str
    node: str
    pod: str | None = None
    occurred_at: datetime = _occurred_at()


@frozen(kw_only=True)
class PrepullFailed(_RepositoryFact):
    """A prepull failed or timed out (difference 4: a failure, never "present")."""

    TYPE: ClassVar[str] = "prepull.failed"
    VERSION: ClassVar[int] = 1
    tag: str | None = None
    digest: str
    node: str
    reason: str
    pod: str | None = None
    occurred_at: datetime = _occurred_at()


@frozen(kw_only=True)
class PrepullParked(_RepositoryFact):
    """After too many consecutive failures the (digest, node) pair gets no more attempts."""

    TYPE: ClassVar[str] = "prepull.parked"
    VERSION: ClassVar[int] = 1
    digest: str
    node: str
    failures: int
    reason: str
    occurred_at: datetime = _occurred_at()


@frozen(kw_only=True)
class PrepullUnparked(_RepositoryFact):
    """A parked pair may be tried again (new digest, node change or operator command)."""

    TYPE: ClassVar[str] = "prepull.unparked"
    VERSION: ClassVar[int] = 1
    digest: str
    node: str
    reason: str
    occurred_at: datetime = _occurred_at()


@frozen(kw_only=True)
class PolicyConfigured(_RepositoryFact):
    """The policy in force for a repository changed (recorded when the configuration differs)."""

    TYPE: ClassVar[str] = "policy.configured"
    VERSION: ClassVar[int] = 1
    prepull: PrepullPolicy
    dropdown: DropdownPolicy = DropdownPolicy()
    node_selector: Mapping[str, str] = field(factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    config_hash: str = ""
    """sha256 of the policy's canonical JSON: which configuration was in force."""
    occurred_at: datetime = _occurred_at()


Event: TypeAlias = (
    RefreshStarted
    | TagDiscovered
    | TagResolved
    | TagMoved
    | TagRemoved
    | RefreshCompleted
    | RefreshFailed
    | NodeSeen
    | NodeInventoryObserved
    | NodeGone
    | PrepullRequested
    | PrepullSucceeded
    | PrepullFailed
    | PrepullParked
    | PrepullUnparked
    | PolicyConfigured
)
"""Any event."""

EVENT_CLASSES: tuple[type[Event], ...] = (
    RefreshStarted,
    TagDiscovered,
    TagResolved,
    TagMoved,
    TagRemoved,
    RefreshCompleted,
    RefreshFailed,
    NodeSeen,
    NodeInventoryObserved,
    NodeGone,
    PrepullRequested,
    PrepullSucceeded,
    PrepullFailed,
    PrepullParked,
    PrepullUnparked,
    PolicyConfigured,
)
"""Every event class, each with a distinct stored ``TYPE``."""

_BY_TYPE: dict[str, type[Event]] = {cls.TYPE: cls for cls in EVENT_CLASSES}
assert len(_BY_TYPE) == len(EVENT_CLASSES), "stored event names must be unique"


def event_class(type_name: str) -> type[Event]:
    """The class stored under ``type_name``; KeyError for a name this code does not know."""
    return _BY_TYPE[type_name]


def stream_of(event: Event) -> str:
    """The stream an event belongs to: ``repo:<registry>/<repository>``, ``node:<name>``,
    or ``prepull:<node>``."""
    if isinstance(event, NodeSeen | NodeInventoryObserved | NodeGone):
        return f"node:{event.node}"
    if isinstance(
        event, PrepullRequested | PrepullSucceeded | PrepullFailed | PrepullParked | PrepullUnparked
    ):
        return f"prepull:{event.node}"
    return f"repo:{event.registry}/{event.repository}"
