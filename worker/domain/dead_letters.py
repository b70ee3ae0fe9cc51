"""Dead letters as the operator sees them, and which of them an operator's selection names."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import attrs
from attrs import frozen

__all__ = ["DeadLetter", "ReplayReport", "Selection"]


@frozen
class DeadLetter:
    """One dead-lettered message as the operator sees it."""

    message_id: str
    routing_key: str
    source_queue: str | None
    reason: str | None
    attempts: int
    dead_lettered_at: datetime | None
    """When it was dead-lettered, if the message says: the worker's header, RabbitMQ's
    ``x-death`` time when the broker dead-lettered it, the timestamp property, or None."""
    returns: int
    """How often the dead queue has handed it out and got it back (``x-delivery-count``)."""
    body: bytes = attrs.field(repr=False)

    @property
    def size(self) -> int:
        """The body's length in bytes."""
        return len(self.body)

    def preview(self, length: int = 60) -> str:
        """The start of the body as text, on one line."""
        text = self.body.decode("utf-8", "replace").replace("\n", " ").replace("\r", " ")
        return text if len(text) <= length else text[: length - 1] + "…"


@frozen
class ReplayReport:
    """What a replay did: dead letters republished, and those left with the reason."""

    replayed: tuple[DeadLetter, ...]
    failed: tuple[tuple[DeadLetter, str], ...]


@frozen
class Selection:
    """The dead letters an operator names: by message id, by original routing key (alone,
    or narrowing the ids or everything), or all of them."""

    ids: frozenset[str] = frozenset()
    routing_key: str | None = None
    everything: bool = False

    def __call__(self, letter: DeadLetter) -> bool:
        """Whether the selection names this dead letter."""
        if self.ids and letter.message_id not in self.ids:
            return False
        return self.routing_key is None or letter.routing_key == self.routing_key

    def missing(self, found: Iterable[DeadLetter]) -> list[str]:
        """The message ids named that none of ``found`` has, sorted."""
        return sorted(self.ids - {letter.message_id for letter in found})
