"""What a decoded message must meet before it is handled, beyond its own shape: a time
that is not ahead of the worker's clock by more than the configured skew."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from worker.domain.errors import MessageRejected
from worker.domain.message_rules import check_clock
from worker.domain.messages import INBOUND_MESSAGES, Delivery, InvalidFieldError

__all__ = ["clock_admission"]


INBOUND_TYPES = tuple(INBOUND_MESSAGES.values())


def clock_admission(
    max_skew: timedelta, clock: Callable[[], datetime]
) -> Callable[[Delivery], None]:
    """A check for each delivery on arrival: MessageRejected (dead-lettered at once, with
    the field path) when its time is more than ``max_skew`` ahead of ``clock()``."""

    def admit(delivery: Delivery) -> None:
        message = delivery.message
        if not isinstance(message, INBOUND_TYPES):
            return  # the bridge's prepull.requested: the worker's own message, not an observation
        try:
            check_clock(message, clock(), max_skew)
        except InvalidFieldError as exc:
            raise MessageRejected(f"{exc.problem} @ $.{exc.field}") from exc

    return admit
