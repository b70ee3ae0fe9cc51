"""Prepull planning: which (image, node) pairs to request, time out, park or announce as done.

Pure rules over a snapshot of the projections taken inside the ledger transaction: the
prepull targets in display order (recommended first, then type order, newest first), the
eligible nodes, and the (node, digest) pairs the plan may act on. Keys and message ids are
derived from the pair and its request count, so planning twice from the same state yields
the same facts and the same messages (DOMAIN.md differences 4 and 5).

The snapshot need not list the whole (target x node) matrix: ``full_snapshot`` builds that
(the specification), and a store may list only the pairs in flight or failed plus the first
pairs ``_requests`` could pick (``busy_nodes`` and ``request_window`` say which); both give
the same plan.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from attrs import evolve, field, frozen

from worker.domain.events import Event, PrepullFailed, PrepullParked, PrepullRequested
from worker.domain.references import DockerReference

__all__ = [
    "Fact",
    "PairState",
    "Plan",
    "PlanInput",
    "PlannedRequest",
    "PrepullSettings",
    "PrepullTarget",
    "backoff_delay",
    "busy_nodes",
    "complete_message_id",
    "full_snapshot",
    "plan_prepulls",
    "pull_order",
    "request_message_id",
]

Pair = tuple[str, str]
"""(node, digest)."""


@frozen
class Fact:
    """An event with its deterministic idempotency key and the message that caused it."""

    event: Event
    key: str
    causation: str | None = None


@frozen
class PrepullSettings:
    """The prepull knobs: attempts before parking, in-flight caps, back-off and timeout."""

    max_attempts: int = 5
    in_flight_per_node: int = 1
    in_flight_total: int = 100
    backoff: timedelta = timedelta(minutes=1)
    max_backoff: timedelta = timedelta(hours=1)
    timeout: timedelta = timedelta(minutes=10)


@frozen
class PrepullTarget:
    """One image to pull (``ledger.prepull_targets`` where ``pull``), in display order."""

    registry: str
    repository: str
    tag: str
    digest: str
    position: int

    @property
    def reference(self) -> DockerReference:
        """The image pinned by digest."""
        return DockerReference(self.registry, self.repository, self.tag, self.digest)


@frozen
class PairState:
    """What is known of one digest on one node (a ``ledger.node_images`` row)."""

    node: str
    digest: str
    present: bool = False
    state: str | None = None
    """None, ``requested``, ``succeeded``, ``failed`` or ``parked``."""
    requests: int = 0
    failures: int = 0
    """Consecutive failures since the last success or unpark."""
    deadline: datetime | None = None
    finished_at: datetime | None = None
    registry: str | None = None
    repository: str | None = None
    tag: str | None = None
    reason: str | None = None
    """The last failure's (or unpark's) reason."""

    @property
    def in_flight(self) -> bool:
        """A request without completion for a digest the node does not hold yet."""
        return self.state == "requested" and not self.present


@frozen
class PlanInput:
    """The snapshot a plan is made from."""

    targets: tuple[PrepullTarget, ...] = ()
    eligible_nodes: tuple[str, ...] = ()
    pairs: Mapping[Pair, PairState] = field(factory=dict)
    """The pairs the plan may act on: every pair in flight, every failed pair of a target
    digest, and every pair it may request (a pair not listed gets no request)."""
    held_everywhere: frozenset[str] = frozenset()
    """Target digests that every eligible node holds (the image is complete)."""
    announced: frozenset[str] = frozenset()
    """``message_id`` of the ``prepull.complete`` messages already written (not again)."""


def full_snapshot(
    targets: Sequence[PrepullTarget],
    eligible_nodes: Sequence[str],
    known: Mapping[Pair, PairState],
) -> PlanInput:
    """The snapshot over the whole matrix: every (eligible node, target digest) pair listed
    (those never seen with no state), plus the known pairs, and which digests every
    eligible node holds."""
    pairs = dict(known)
    digests = {t.digest for t in targets}
    for node in eligible_nodes:
        for digest in digests:
            pairs.setdefault((node, digest), PairState(node, digest))
    held = frozenset(
        d for d in digests if eligible_nodes and all(pairs[(n, d)].present for n in eligible_nodes)
    )
    return PlanInput(tuple(targets), tuple(eligible_nodes), pairs, held)


@frozen
class PlannedRequest:
    """A prepull to ask for: the target, the node, the attempt and the deadline."""

    target: PrepullTarget
    node: str
    attempt: int
    request_number: int
    deadline: datetime

    @property
    def message_id(self) -> str:
        """Stable: the same request always has the same id."""
        return request_message_id(self.target.digest, self.node, self.request_number)


@frozen
class Plan:
    """What planning decided: facts to append, requests to send, images now complete."""

    facts: tuple[Fact, ...] = ()
    requests: tuple[PlannedRequest, ...] = ()
    complete: tuple[PrepullTarget, ...] = ()
    timeouts: int = 0
    parked: int = 0


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def request_message_id(digest: str, node: str, request_number: int) -> str:
    """The ``message_id`` of the n-th ``prepull.requested`` of a pair."""
    return "prepull.requested:" + _sha(digest, node, str(request_number))


def complete_message_id(target: PrepullTarget) -> str:
    """The ``message_id`` of an image's ``prepull.complete`` (once per image and digest)."""
    return "prepull.complete:" + _sha(target.registry, target.repository, target.tag, target.digest)


def backoff_delay(failures: int, settings: PrepullSettings) -> timedelta:
    """How long to wait after ``failures`` consecutive failures: doubling, capped."""
    if failures <= 0:
        return timedelta(0)
    delay: timedelta = settings.backoff * 2 ** min(failures - 1, 30)
    return min(delay, settings.max_backoff)


def _wants(pair: PairState | None, settings: PrepullSettings, now: datetime) -> bool:
    """Whether a pair needs a request now (not present, not in flight, not parked,
    past its back-off)."""
    if pair is None:
        return True
    if pair.present or pair.state in ("requested", "parked"):
        return False
    if pair.state == "failed" and pair.finished_at is not None:
        return now >= pair.finished_at + backoff_delay(pair.failures, settings)
    return True


def _source(pair: PairState, targets: Mapping[str, PrepullTarget]) -> tuple[str, str, str | None]:
    target = targets.get(pair.digest)
    if target is not None:
        return target.registry, target.repository, target.tag
    return pair.registry or "", pair.repository or "", pair.tag


def _timeouts(
    pairs: dict[Pair, PairState], targets: Mapping[str, PrepullTarget], now: datetime
) -> list[Fact]:
    """A request with no completion by its deadline is a failure (reason: timeout)."""
    facts: list[Fact] = []
    for key in sorted(pairs):
        pair = pairs[key]
        if not pair.in_flight or pair.deadline is None or pair.deadline > now:
            continue
        registry, repository, tag = _source(pair, targets)
        event = PrepullFailed(
            registry=registry,
            repository=repository,
            tag=tag,
            digest=pair.digest,
            node=pair.node,
            reason=f"timeout: no completion by {pair.deadline.isoformat()}",
            occurred_at=now,
        )
        facts.append(Fact(event, f"prepull.timeout:{pair.node}:{pair.digest}:{pair.requests}"))
        pairs[key] = evolve(pair, state="failed", failures=pair.failures + 1, finished_at=now)
    return facts


def _parks(
    pairs: dict[Pair, PairState],
    targets: Mapping[str, PrepullTarget],
    settings: PrepullSettings,
    now: datetime,
) -> list[Fact]:
    """After ``max_attempts`` consecutive failures a pair is parked (difference 4)."""
    facts: list[Fact] = []
    for key in sorted(pairs):
        pair = pairs[key]
        if pair.state != "failed" or pair.present or pair.failures < settings.max_attempts:
            continue
        registry, repository, _ = _source(pair, targets)
        event = PrepullParked(
            registry=registry,
            repository=repository,
            digest=pair.digest,
            node=pair.node,
            failures=pair.failures,
            reason=f"{pair.failures} consecutive failures"
            + (f", the last: {pair.reason}" if pair.reason else ""),
            occurred_at=now,
        )
        facts.append(Fact(event, f"prepull.parked:{pair.node}:{pair.digest}:{pair.requests}"))
        pairs[key] = evolve(pair, state="parked")
    return facts


def busy_nodes(
    in_flight: Sequence[PairState], settings: PrepullSettings, now: datetime
) -> dict[str, int]:
    """Requests each node has in flight that will not time out at ``now`` (what counts
    against its cap in this plan)."""
    return dict(
        Counter(
            p.node for p in in_flight if p.in_flight and (p.deadline is None or p.deadline > now)
        )
    )


def request_window(settings: PrepullSettings) -> tuple[int, int]:
    """What a narrowed snapshot must list of the pairs without state that the plan may
    request: per node its first ``per node`` (cap minus its busy count) in target order,
    then the first ``total`` of those in (target, node) order. ``_requests`` picks greedily
    in that order within the same caps, so it never picks a pair beyond that window."""
    return settings.in_flight_per_node, settings.in_flight_total


def _requests(
    snapshot: PlanInput,
    order: Sequence[PrepullTarget],
    pairs: Mapping[Pair, PairState],
    settings: PrepullSettings,
    now: datetime,
) -> list[PlannedRequest]:
    """Requests in target order (``order``: the pull order) then node order, within the
    per-node and global caps."""
    per_node = Counter(p.node for p in pairs.values() if p.in_flight)
    total = sum(per_node.values())
    planned: list[PlannedRequest] = []
    rank = {t.digest: i for i, t in enumerate(order)}
    eligible = set(snapshot.eligible_nodes)
    listed = sorted((rank[d], n) for n, d in pairs if d in rank and n in eligible)
    for position, node in listed:
        if total >= settings.in_flight_total:
            break
        target = order[position]
        pair = pairs[(node, target.digest)]
        if per_node[node] >= settings.in_flight_per_node or not _wants(pair, settings, now):
            continue
        number, attempt = pair.requests + 1, pair.failures + 1
        deadline = now + settings.timeout
        planned.append(PlannedRequest(target, node, attempt, number, deadline))
        per_node[node] += 1
        total += 1
    return planned


def pull_order(targets: Sequence[PrepullTarget]) -> list[PrepullTarget]:
    """Targets in display order, one per digest (the first wins): the order prepulls go."""
    seen: set[str] = set()
    out: list[PrepullTarget] = []
    for target in sorted(targets, key=lambda t: (t.position, t.tag)):
        if target.digest not in seen:
            seen.add(target.digest)
            out.append(target)
    return out


def _request_fact(request: PlannedRequest, now: datetime) -> Fact:
    target = request.target
    event = PrepullRequested(
        registry=target.registry,
        repository=target.repository,
        tag=target.tag,
        digest=target.digest,
        node=request.node,
        attempt=request.attempt,
        deadline=request.deadline,
        occurred_at=now,
    )
    key = f"prepull.requested:{request.node}:{target.digest}:{request.request_number}"
    return Fact(event, key)


def plan_prepulls(snapshot: PlanInput, settings: PrepullSettings, now: datetime) -> Plan:
    """Decide timeouts, parkings, new requests and completed images at ``now``.

    Ineligible nodes get nothing (difference 5); parked pairs get nothing until unparked;
    an image is complete when every eligible node holds its digest (and there is one).
    Only pairs the snapshot lists are acted on (``PlanInput.pairs``).
    """
    pairs = dict(snapshot.pairs)
    order = pull_order(snapshot.targets)
    by_digest = {t.digest: t for t in order}
    timeouts = _timeouts(pairs, by_digest, now)
    parks = _parks(pairs, by_digest, settings, now)
    requests = _requests(snapshot, order, pairs, settings, now)
    complete = tuple(
        t
        for t in order
        if snapshot.eligible_nodes
        and t.digest in snapshot.held_everywhere
        and complete_message_id(t) not in snapshot.announced
    )
    facts = (*timeouts, *parks, *(_request_fact(r, now) for r in requests))
    return Plan(facts, tuple(requests), complete, len(timeouts), len(parks))
