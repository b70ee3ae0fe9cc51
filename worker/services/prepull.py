"""Pod completions, prepull planning, and the one-transaction handling of a message batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

import structlog
from attrs import field, frozen

from worker.config import Config
from worker.domain.changes import (
    Gating,
    ImagesState,
    Offer,
    RepositoryKey,
    images_changes,
    images_state,
)
from worker.domain.copying import copy_shared
from worker.domain.events import PrepullFailed, PrepullSucceeded
from worker.domain.messages import (
    Delivery,
    Outgoing,
    PodCompleted,
    PrepullCompleteMessage,
    PrepullRequestedMessage,
)
from worker.domain.node_observation import NodeRules
from worker.domain.prepull import (
    Fact,
    Plan,
    PlanInput,
    PrepullSettings,
    complete_message_id,
    plan_prepulls,
)
from worker.services.arrivals import MessageLedger, first_arrivals
from worker.services.nodes import NodeLedger, record_inventories

__all__ = [
    "BatchReport",
    "PrepullLedger",
    "UnitOfWork",
    "completion_facts",
    "handle_batch",
    "node_rules",
    "plan_and_announce",
    "prepull_settings",
]

log = structlog.get_logger("imageledger.prepull")


class PrepullLedger(NodeLedger, MessageLedger, Protocol):
    """The unit of work of one batch: reads for decisions, appends, the outbox."""

    async def plan_input(self, settings: PrepullSettings, now: datetime) -> PlanInput:
        """Targets in display order, eligible nodes, and the pairs a plan at ``now`` may
        act on (``PlanInput.pairs``), with the digests every eligible node holds."""

    async def write_outbox(self, messages: Sequence[Outgoing]) -> int:
        """Store outbound messages in this transaction; returns how many were new."""

    async def offers(self) -> dict[RepositoryKey, Offer]:
        """What the last refresh of each repository offers: menu entries, prepull set."""

    async def gating(self, digests: Iterable[str]) -> Gating:
        """The eligible nodes and how many of them hold each of ``digests``, now."""

    async def log_head(self) -> int:
        """The position of the last event, this unit's appends included."""


class UnitOfWork(Protocol):
    """Opens one transaction per batch."""

    def transaction(self) -> AbstractAsyncContextManager[PrepullLedger]:
        """A unit of work that commits when the block ends."""


@frozen
class BatchReport:
    """What one batch did: new events by type, prepulls requested, images completed,
    ``images.changed`` messages written."""

    appended: dict[str, int] = field(factory=dict)
    requested: int = 0
    completed: int = 0
    timeouts: int = 0
    parked: int = 0
    announced: int = 0


def node_rules(config: Config) -> NodeRules:
    """Eligibility rules from the configuration."""
    return NodeRules(
        node_selector=dict(config.lab.node_selector),
        tolerations=config.lab.tolerations,
        max_images=config.images.node_status_max_images,
    )


def prepull_settings(config: Config) -> PrepullSettings:
    """Planner settings from the configuration."""
    return copy_shared(PrepullSettings, config.prepull, timeout=config.images.prepull_timeout)


def completion_facts(deliveries: Sequence[Delivery]) -> list[Fact]:
    """``PrepullSucceeded`` / ``PrepullFailed`` per ``prepull.pod_completed`` (a failure is
    never "present", difference 4), keyed by the message id."""
    facts: list[Fact] = []
    for delivery in deliveries:
        message = delivery.message
        if not isinstance(message, PodCompleted):
            continue
        image = message.image
        assert image.digest is not None  # validated on arrival
        common = {
            "registry": image.registry,
            "repository": image.repository,
            "tag": image.tag,
            "digest": image.digest,
            "node": message.node,
            "pod": message.pod,
            "occurred_at": message.finished_at,
        }
        event: PrepullSucceeded | PrepullFailed
        if message.succeeded:
            event = PrepullSucceeded(**common)  # type: ignore[arg-type]
        else:
            event = PrepullFailed(reason=message.reason or "failed", **common)  # type: ignore[arg-type]
        key = f"{delivery.message_id}:{event.TYPE}"
        facts.append(Fact(event, key, delivery.message_id))
    return facts


def _outgoing(plan: Plan, nodes: tuple[str, ...], now: datetime) -> list[Outgoing]:
    messages = [
        Outgoing(
            PrepullRequestedMessage(
                image=r.target.reference,
                tag=r.target.tag,
                digest=r.target.digest,
                node=r.node,
                attempt=r.attempt,
                deadline=r.deadline,
            ),
            message_id=r.message_id,
        )
        for r in plan.requests
    ]
    messages.extend(
        Outgoing(
            PrepullCompleteMessage(
                image=t.reference, tag=t.tag, digest=t.digest, nodes=nodes, completed_at=now
            ),
            message_id=complete_message_id(t),
        )
        for t in plan.complete
    )
    return messages


async def plan_and_announce(
    unit: PrepullLedger, settings: PrepullSettings, now: datetime
) -> BatchReport:
    """Plan at ``now`` inside the unit: append the plan's facts, write its messages."""
    snapshot = await unit.plan_input(settings, now)
    plan = plan_prepulls(snapshot, settings, now)
    appended = await unit.append(plan.facts)
    written = await unit.write_outbox(_outgoing(plan, snapshot.eligible_nodes, now))
    completed = max(0, written - appended.get("prepull.requested", 0))
    for target in plan.complete if completed else ():
        log.debug("prepull complete", tag=target.tag, digest=target.digest)
    if appended:
        log.info(
            "prepulls planned",
            requested=appended.get("prepull.requested", 0),
            timeouts=plan.timeouts,
            parked=plan.parked,
            completed=completed,
        )
    return BatchReport(
        appended,
        appended.get("prepull.requested", 0),
        completed,
        appended.get("prepull.failed", 0),
        appended.get("prepull.parked", 0),
    )


async def handle_batch(
    store: UnitOfWork,
    deliveries: Sequence[Delivery],
    *,
    rules: NodeRules,
    settings: PrepullSettings,
    clock: Callable[[], datetime],
) -> BatchReport:
    """Record a batch of inventories and pod completions, then plan, in one transaction.

    Returns once it committed (the consumer acknowledges after that). With no deliveries
    it only plans (timeouts and back-off move with the clock). Inventories and pod
    completions may show or hide menu entries (prepull gating): then ``images.changed``.
    Each message id is folded once: a delivery already folded adds nothing, and a reused
    id with another body raises DeliveriesRejected (``first_arrivals``).
    """
    async with store.transaction() as unit:
        deliveries = await first_arrivals(unit, deliveries)
        gated = await _GatedOffers.read(unit) if deliveries else None
        counts = Counter(await record_inventories(unit, deliveries, rules))
        counts.update(await unit.append(completion_facts(deliveries)))
        now = clock()
        report = await plan_and_announce(unit, settings, now)
        announced = 0 if gated is None else await gated.announce_changes(unit, now)
    counts.update(report.appended)
    return BatchReport(
        dict(counts),
        report.requested,
        report.completed,
        report.timeouts,
        report.parked,
        announced,
    )


class _GatedOffers:
    """The repositories' offers (a batch cannot change them: only refreshes do) and what
    the spawner saw of them when the batch began; inventories and pod completions change
    only the gating, so the state after needs one more read of presence."""

    def __init__(self, offers: dict[RepositoryKey, Offer], before: Gating) -> None:
        self._offers = offers
        self._before = before
        self._digests = frozenset(d for o in offers.values() for d in o.gated_digests())

    @classmethod
    async def read(cls, unit: PrepullLedger) -> _GatedOffers:
        offers = await unit.offers()
        digests = {d for o in offers.values() for d in o.gated_digests()}
        return cls(offers, await unit.gating(digests))

    def states(self, gating: Gating) -> dict[RepositoryKey, ImagesState]:
        return {
            key: images_state(offer, gating, dropdown=False) for key, offer in self._offers.items()
        }

    async def announce_changes(self, unit: PrepullLedger, now: datetime) -> int:
        """``images.changed`` for each repository whose menu (as shown) changed."""
        if not self._digests:
            return 0  # no entry waits for a prepull: nothing a batch does can show or hide one
        after = await unit.gating(self._digests)
        if after == self._before:
            return 0
        before_states, after_states = self.states(self._before), self.states(after)
        if after_states == before_states:
            return 0
        position = await unit.log_head()
        messages = images_changes(before_states, after_states, position=position, at=now)
        return await unit.write_outbox(messages) if messages else 0
