"""Prometheus metrics of one worker process, on a registry of its own (built by the factory)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from worker.domain.events import RefreshCompleted, RefreshFailed

__all__ = ["CONTENT_TYPE", "WorkerMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500)
_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_REFRESH_SECONDS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class WorkerMetrics:
    """Counters, histograms and gauges; implements the broker's ``BrokerMetrics`` hooks."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._consumed = Counter(
            "imageledger_messages_consumed", "Messages decoded and handled", ["queue"], registry=r
        )
        self._dead = Counter(
            "imageledger_messages_dead_lettered", "Messages dead-lettered", ["queue"], registry=r
        )
        self._retried = Counter(
            "imageledger_messages_retried", "Messages sent to a delay queue", ["queue"], registry=r
        )
        self._published = Counter(
            "imageledger_messages_published", "Confirmed publishes", ["routing_key"], registry=r
        )
        self._batch = Histogram(
            "imageledger_batch_size", "Messages per handled batch", ["queue"], buckets=_SIZES,
            registry=r,
        )  # fmt: skip
        self._fold = Histogram(
            "imageledger_fold_seconds", "Time to handle and commit a batch", ["queue"],
            buckets=_SECONDS, registry=r,
        )  # fmt: skip
        self._events = Counter(
            "imageledger_events_appended", "Events appended to the log", ["type"], registry=r
        )
        self._refresh = Histogram(
            "imageledger_refresh_seconds", "Refresh duration", ["status"],
            buckets=_REFRESH_SECONDS, registry=r,
        )  # fmt: skip
        self._requests = Counter(
            "imageledger_registry_requests", "Registry requests by method and status",
            ["method", "status"], registry=r,
        )  # fmt: skip
        self._backlog = Gauge("imageledger_outbox_backlog", "Unpublished outbox rows", registry=r)
        self._prepulls = Gauge(
            "imageledger_prepulls", "Prepull pairs by state (not present)", ["state"], registry=r
        )

    # BrokerMetrics hooks
    def consumed(self, queue: str, count: int) -> None:
        """Messages decoded and handed to the handler."""
        self._consumed.labels(queue).inc(count)

    def dead_lettered(self, queue: str, count: int) -> None:
        """Messages that went to the dead-letter queue."""
        self._dead.labels(queue).inc(count)

    def retried(self, queue: str, count: int) -> None:
        """Messages sent to the delay queue."""
        self._retried.labels(queue).inc(count)

    def batch_handled(self, queue: str, size: int, seconds: float) -> None:
        """A batch committed: its size and how long it took."""
        self._batch.labels(queue).observe(size)
        self._fold.labels(queue).observe(seconds)

    def published(self, routing_key: str, count: int) -> None:
        """Messages published and confirmed."""
        self._published.labels(routing_key).inc(count)

    # the worker's own
    def events_appended(self, counts: Mapping[str, int]) -> None:
        """New events by type."""
        for type_name, count in counts.items():
            self._events.labels(type_name).inc(count)

    def refresh_finished(self, summary: RefreshCompleted | RefreshFailed) -> None:
        """A refresh ended: its duration and its registry requests by status."""
        status = "completed" if isinstance(summary, RefreshCompleted) else "failed"
        self._refresh.labels(status).observe(summary.duration_seconds)
        for request in summary.requests:
            code = "none" if request.status is None else str(request.status)
            self._requests.labels(request.method, code).inc(request.count)

    def set_state(self, backlog: int, prepulls: Mapping[str, int]) -> None:
        """Gauges read at scrape time."""
        self._backlog.set(backlog)
        names = {"requested": "in_flight", "failed": "failed", "parked": "parked"}
        for state, name in names.items():
            self._prepulls.labels(name).set(prepulls.get(state, 0))

    def render(self) -> bytes:
        """The text exposition format."""
        return bytes(generate_latest(self.registry))
