"""Limits and cost accounting of registry requests: budgets, counts, bytes, rate limits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from attrs import define, field, frozen

from worker.domain.events import RequestCount

from .wire import RATE_LIMIT_HEADERS

__all__ = [
    "RegistryLimits",
    "RequestCount",
    "RequestStats",
    "RequestStatsSnapshot",
    "RetryBudget",
]

_RATE_LIMIT_HEADERS = frozenset(RATE_LIMIT_HEADERS)

DEFAULT_RETRY_BUDGET = 100
"""Retries one refresh may spend across all its requests, unless configured otherwise."""


@frozen
class RegistryLimits:
    """Knobs of the client; see docs/registry.md."""

    concurrency: int = 8
    """Requests in flight at once, per client (shared by its `with_stats` views)."""
    request_timeout: float = 10.0
    """Seconds for one attempt of one request, body included."""
    max_attempts: int = 5
    """Attempts of one request (the first one included) before its error is raised."""
    backoff_base: float = 0.5
    """Back-off before retry n is uniform in [0, min(backoff_max, backoff_base * 2**n)]."""
    backoff_max: float = 30.0
    retry_after_max: float = 60.0
    """Longest ``Retry-After`` wait honoured; longer ones are cut to this."""
    page_size: int = 1000
    """``n`` sent on ``tags/list`` (Quay wants at most 100)."""
    max_pages: int = 1000
    max_body_bytes: int = 16 * 1024 * 1024
    retry_budget: int = DEFAULT_RETRY_BUDGET
    """Retries of one `RequestStats` (one refresh) across all its requests."""


@define
class RetryBudget:
    """How many retries a unit of work (one refresh) may still spend, shared by its requests."""

    limit: int = DEFAULT_RETRY_BUDGET
    used: int = 0

    @property
    def remaining(self) -> int:
        """Retries left."""
        return max(0, self.limit - self.used)

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when it is spent."""
        if self.used >= self.limit:
            return False
        self.used += 1
        return True


@frozen
class RequestStatsSnapshot:
    """An immutable copy of `RequestStats`, for a refresh summary event."""

    requests: tuple[RequestCount, ...]
    bytes_received: int
    retries: int
    retry_budget: int
    retry_budget_used: int
    timeouts: int
    connection_errors: int
    token_requests: int
    rate_limit_headers: tuple[tuple[str, str], ...]

    @property
    def total_requests(self) -> int:
        """All HTTP requests sent, answered or not."""
        return sum(entry.count for entry in self.requests)

    def count(self, method: str | None = None, status: int | None = None) -> int:
        """Requests matching ``method`` and ``status`` (None matches any)."""
        return sum(
            entry.count
            for entry in self.requests
            if (method is None or entry.method == method)
            and (status is None or entry.status == status)
        )


@define
class RequestStats:
    """Mutable counters for the requests of one unit of work; owns its retry budget."""

    retry_budget: RetryBudget = field(factory=RetryBudget)
    bytes_received: int = 0
    retries: int = 0
    timeouts: int = 0
    connection_errors: int = 0
    token_requests: int = 0
    _requests: Counter[tuple[str, int | None]] = field(factory=Counter, init=False)
    _rate_limit: dict[str, str] = field(factory=dict, init=False)

    def record_response(self, method: str, status: int, headers: Mapping[str, str]) -> None:
        """Count an answered request and keep its rate-limit headers."""
        self._requests[(method, status)] += 1
        for name, value in headers.items():
            if name.lower() in _RATE_LIMIT_HEADERS:
                self._rate_limit[name.lower()] = value

    def record_no_response(self, method: str, *, timeout: bool) -> None:
        """Count a request that got no answer (a timeout or a connection failure)."""
        self._requests[(method, None)] += 1
        if timeout:
            self.timeouts += 1
        else:
            self.connection_errors += 1

    def snapshot(self) -> RequestStatsSnapshot:
        """Freeze the current counts."""
        requests = tuple(
            RequestCount(method=method, status=status, count=count)
            for (method, status), count in sorted(
                self._requests.items(), key=lambda item: (item[0][0], item[0][1] or 0)
            )
        )
        return RequestStatsSnapshot(
            requests=requests,
            bytes_received=self.bytes_received,
            retries=self.retries,
            retry_budget=self.retry_budget.limit,
            retry_budget_used=self.retry_budget.used,
            timeouts=self.timeouts,
            connection_errors=self.connection_errors,
            token_requests=self.token_requests,
            rate_limit_headers=tuple(sorted(self._rate_limit.items())),
        )
