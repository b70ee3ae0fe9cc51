"""The ledger's figures an operator watches, and the bounded reason classes metrics count by."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from attrs import field, frozen

__all__ = [
    "DEAD_LETTER_REASONS",
    "PREPULL_STATES",
    "REFRESH_FAILURE_REASONS",
    "LedgerFigures",
    "PrepullTargetFigures",
]

REFRESH_FAILURE_REASONS = (
    "auth",
    "rate_limited",
    "server_error",
    "timeout",
    "connection",
    "tls",
    "not_found",
    "protocol",
    "retry_budget",
    "registry",
    "database",
    "internal",
)
"""Why a refresh failed, as a class: the registry's answer or failure (``registry``: an
answer of no other class), the database away (``database``), or a bug (``internal``)."""

DEAD_LETTER_REASONS = ("invalid", "unroutable", "gave_up")
"""Why the worker dead-lettered a message: it does not decode or validate (``invalid``), its
routing key is not one of the queue's (``unroutable``), or handling it failed on every
attempt (``gave_up``)."""

PREPULL_STATES = ("in_flight", "failed", "parked", "succeeded")
"""The prepull states of an (image, node) pair that metrics count."""


@frozen
class PrepullTargetFigures:
    """One prepull target (a tag of the prepull set) over the counted nodes."""

    registry: str
    repository: str
    tag: str
    eligible_nodes: int
    present_nodes: int
    missing_nodes: int
    oldest_missing_age_seconds: float
    """How long the longest-waiting counted node has lacked it (0 when none lacks it)."""


@frozen
class LedgerFigures:
    """What the ledger says now, the same whichever worker reads it."""

    registry: str
    repository: str
    last_refresh_success: datetime | None
    """When the newest completed refresh of the repository finished (None: never)."""
    targets: tuple[PrepullTargetFigures, ...] = ()
    prepulls: Mapping[str, int] = field(factory=dict)
    """Pairs per state of `PREPULL_STATES`."""
    outbox_backlog: int = 0
    outbox_oldest_age_seconds: float = 0.0
