"""RabbitMQ message bodies: what arrives (inbound) and what the worker announces (outbound)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeAlias

from attrs import Attribute, field, frozen

from worker.domain.errors import InvalidInputError
from worker.domain.nodes import KubeletImage, Taint
from worker.domain.references import DockerReference

__all__ = [
    "CONSUMED_MESSAGES",
    "INBOUND_MESSAGES",
    "MAX_MESSAGE_BYTES",
    "MESSAGE_ID_REUSED",
    "OUTBOUND_MESSAGES",
    "Arrivals",
    "ConsumedMessage",
    "DeliveriesRejected",
    "Delivery",
    "ImagesChangedMessage",
    "InboundMessage",
    "InvalidFieldError",
    "NodeGoneMessage",
    "NodeInventory",
    "OutboundMessage",
    "Outgoing",
    "PodCompleted",
    "PrepullCompleteMessage",
    "PrepullRequestedMessage",
    "RefreshRequested",
    "TaggedImage",
    "sort_arrivals",
]

MAX_MESSAGE_BYTES = 1024 * 1024
"""Bodies larger than this (1 MiB) are rejected before they are parsed."""


class InvalidFieldError(InvalidInputError, ValueError):
    """A message field whose value breaks a rule of the message; names the field."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name}: {problem}")
        self.field = field_name
        self.problem = problem


def _non_empty(_: Any, attribute: Attribute[str], value: str) -> None:
    if not value:
        raise InvalidFieldError(attribute.name, "must not be empty")


def _pinned(_: Any, attribute: Attribute[DockerReference], value: DockerReference) -> None:
    if not value.digest:
        raise InvalidFieldError(attribute.name, f'reference "{value}" has no digest')


# --------------------------------------------------------------------------- inbound


@frozen
class RefreshRequested:
    """``refresh.request``: list the registry now (from cron, an operator or a worker)."""

    ROUTING_KEY: ClassVar[str] = "refresh.request"

    reason: str | None = None
    requested_at: datetime | None = None


@frozen
class PodCompleted:
    """``prepull.pod_completed``: a prepull pod finished on a node, successfully or not.

    ``image`` is the reference that was pulled, with its digest; a failure needs a ``reason``.
    """

    ROUTING_KEY: ClassVar[str] = "prepull.pod_completed"

    node: str = field(validator=_non_empty)
    image: DockerReference = field(validator=_pinned)
    pod: str = field(validator=_non_empty)
    succeeded: bool
    finished_at: datetime
    reason: str | None = None

    def __attrs_post_init__(self) -> None:
        if not self.succeeded and not self.reason:
            raise InvalidFieldError("reason", "required when succeeded is false")


@frozen
class NodeInventory:
    """``node.inventory``: a node's labels, taints and ``node.status.images`` as Kubernetes
    reports them (each image: ``names`` and ``sizeBytes``)."""

    ROUTING_KEY: ClassVar[str] = "node.inventory"

    node: str = field(validator=_non_empty)
    observed_at: datetime
    labels: Mapping[str, str] = field(factory=dict)
    taints: tuple[Taint, ...] = ()
    images: tuple[KubeletImage, ...] = ()
    unschedulable: bool = False


@frozen
class NodeGoneMessage:
    """``node.gone``: the node was deleted from the cluster (observed at ``observed_at``)."""

    ROUTING_KEY: ClassVar[str] = "node.gone"

    node: str = field(validator=_non_empty)
    observed_at: datetime


InboundMessage: TypeAlias = RefreshRequested | PodCompleted | NodeInventory | NodeGoneMessage

INBOUND_MESSAGES: Mapping[str, type[InboundMessage]] = {
    cls.ROUTING_KEY: cls for cls in (RefreshRequested, PodCompleted, NodeInventory, NodeGoneMessage)
}
"""Routing key -> message class, for everything the worker consumes."""


@frozen
class Delivery:
    """A decoded message as a consumer's handler sees it (the worker's inbound messages,
    the bridge's ``prepull.requested``).

    ``message_id`` is the AMQP ``message_id`` property, or ``sha256:<hex of the body>`` when a
    publisher left it out, so a redelivery always has the same id. ``attempt`` counts handler
    attempts through the retry (delay) queue, starting at 1. ``body_sha256`` is the hex
    SHA-256 of the body as it arrived (None for a delivery made up in a test or a replay of
    the log): one message id names one body.
    """

    message: ConsumedMessage
    message_id: str
    routing_key: str
    attempt: int = 1
    body_sha256: str | None = None


class DeliveriesRejected(InvalidInputError):
    """A handler refuses some deliveries of its batch for good (its transaction rolled
    back): ``reasons`` maps their indices in the batch to why. The consumer dead-letters
    them on this attempt and hands the others to the handler again."""

    def __init__(self, reasons: Mapping[int, str]) -> None:
        super().__init__("; ".join(f"delivery {i}: {r}" for i, r in sorted(reasons.items())))
        self.reasons = dict(reasons)


MESSAGE_ID_REUSED = "message id reused with a different body"
"""Why a delivery is dead-lettered whose id names another body than the one folded."""


@frozen
class Arrivals:
    """A batch's deliveries sorted against the message ids already folded: ``fresh`` to
    fold (and record), ``repeated`` already folded with the same body (nothing to do),
    ``reused`` carrying another body under a known id (indices into the batch)."""

    fresh: tuple[int, ...]
    repeated: tuple[int, ...]
    reused: tuple[int, ...]


def sort_arrivals(deliveries: Sequence[Delivery], recorded: Mapping[str, str]) -> Arrivals:
    """One message id, one effect: sort ``deliveries`` against ``recorded`` (message id ->
    body hash of what was folded), the batch's earlier deliveries included. A delivery
    without a body hash is always fresh."""
    known = dict(recorded)
    fresh: list[int] = []
    repeated: list[int] = []
    reused: list[int] = []
    for i, delivery in enumerate(deliveries):
        body = delivery.body_sha256
        seen = known.get(delivery.message_id)
        if body is None or seen is None:
            fresh.append(i)
            if body is not None:
                known[delivery.message_id] = body
        elif seen == body:
            repeated.append(i)
        else:
            reused.append(i)
    return Arrivals(tuple(fresh), tuple(repeated), tuple(reused))


# --------------------------------------------------------------------------- outbound


@frozen
class _PinnedTag:
    """An outbound message's image, pinned by digest, and the tag it was asked by."""

    image: DockerReference = field(validator=_pinned)
    tag: str
    digest: str


@frozen
class PrepullRequestedMessage(_PinnedTag):
    """``prepull.requested``: pull ``image`` (pinned by digest) on ``node`` before ``deadline``."""

    ROUTING_KEY: ClassVar[str] = "prepull.requested"

    node: str
    attempt: int
    deadline: datetime


@frozen
class PrepullCompleteMessage(_PinnedTag):
    """``prepull.complete``: ``image`` is now cached on every eligible node."""

    ROUTING_KEY: ClassVar[str] = "prepull.complete"

    nodes: tuple[str, ...]
    completed_at: datetime


@frozen
class TaggedImage:
    """A tag and the digest it points to (None while never resolved)."""

    tag: str
    digest: str | None = None


@frozen
class ImagesChangedMessage:
    """``images.changed``: what the spawner offers from a repository changed.

    ``menu_*`` are the radio entries as shown (after prepull gating), ``dropdown_*`` the
    dropdown, ``prepull_*`` the prepull set as status lists it; each names tags in display
    order. ``moved`` names tags of the menu, dropdown or prepull set that now point to
    another digest; ``recommended`` is the recommended image now (None when absent).
    """

    ROUTING_KEY: ClassVar[str] = "images.changed"

    registry: str
    repository: str
    menu_added: tuple[str, ...]
    menu_removed: tuple[str, ...]
    dropdown_added: tuple[str, ...]
    dropdown_removed: tuple[str, ...]
    prepull_added: tuple[str, ...]
    prepull_removed: tuple[str, ...]
    moved: tuple[str, ...]
    recommended: TaggedImage | None
    changed_at: datetime


OutboundMessage: TypeAlias = PrepullRequestedMessage | PrepullCompleteMessage | ImagesChangedMessage

OUTBOUND_MESSAGES: Mapping[str, type[OutboundMessage]] = {
    cls.ROUTING_KEY: cls
    for cls in (PrepullRequestedMessage, PrepullCompleteMessage, ImagesChangedMessage)
}
"""Routing key -> message class, for everything the worker publishes."""

ConsumedMessage: TypeAlias = InboundMessage | PrepullRequestedMessage
"""What a work queue delivers: the worker's inbound messages, the bridge's requests."""

CONSUMED_MESSAGES: Mapping[str, type[ConsumedMessage]] = {
    **INBOUND_MESSAGES,
    PrepullRequestedMessage.ROUTING_KEY: PrepullRequestedMessage,
}
"""Routing key -> message class, for everything a work queue (worker or bridge) takes."""


@frozen
class Outgoing:
    """An outbound message with the id it is published under.

    Give a deterministic ``message_id`` (derived from the event that caused it) so that the
    same decision always yields the same id; without one, the outbox derives it from the
    routing key and body.
    """

    message: OutboundMessage
    message_id: str | None = None
    headers: Mapping[str, str] = field(factory=dict)
