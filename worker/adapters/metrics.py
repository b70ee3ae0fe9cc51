"""Prometheus metrics of one worker process, on a registry of its own (built by the factory).

Counters and histograms count what this process did; the ledger's gauges (last successful
refresh, prepull targets, prepull pairs, outbox) are set from `LedgerFigures` read at scrape
time, so every worker reports the same values and a series disappears with its target.
Queue labels carry no broker prefix (``queue="pod_completed"``); no ``_created`` series.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from worker.adapters.broker_counters import BrokerCounters
from worker.domain.events import RefreshCompleted, RefreshFailed
from worker.domain.figures import (
    DEAD_LETTER_REASONS,
    PREPULL_STATES,
    REFRESH_FAILURE_REASONS,
    LedgerFigures,
)
from worker.domain.messages import INBOUND_MESSAGES, OUTBOUND_MESSAGES

__all__ = ["CONTENT_TYPE", "WorkerMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500)
_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_REFRESH_SECONDS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
_TARGET = ("registry", "repository", "tag")


class WorkerMetrics(BrokerCounters):
    """Counters, histograms and gauges; implements the broker's ``BrokerMetrics`` hooks."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self._consumed = Counter(
            "imageledger_messages_consumed", "Messages decoded and handled", ["queue"], registry=r
        )
        self._dead = Counter(
            "imageledger_messages_dead_lettered",
            "Messages the worker dead-lettered, by original routing key and reason class",
            ["routing_key", "reason"], registry=r,
        )  # fmt: skip
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
        self._failures = Counter(
            "imageledger_refresh_failures", "Failed refreshes by reason class", ["reason"],
            registry=r,
        )  # fmt: skip
        self._requests = Counter(
            "imageledger_registry_requests",
            "Registry requests by method and status (none: no answer)",
            ["method", "status"], registry=r,
        )  # fmt: skip
        self._interval = Gauge(
            "imageledger_refresh_interval_seconds", "The configured images.refreshInterval",
            ["registry", "repository"], registry=r,
        )  # fmt: skip
        self._consumers = Gauge(
            "imageledger_queue_consumers", "Consumers this process holds on the queue",
            ["queue"], registry=r,
        )  # fmt: skip
        self._ledger = _LedgerCollector()
        r.register(self._ledger)
        self._start_at_zero()

    def _start_at_zero(self) -> None:
        """Series whose labels are known from the start, at 0 (so ``increase`` sees the
        first one)."""
        for routing_key in INBOUND_MESSAGES:
            for reason in DEAD_LETTER_REASONS:
                self._dead.labels(routing_key, reason)
        for routing_key in OUTBOUND_MESSAGES:
            self._published.labels(routing_key)
        for reason in REFRESH_FAILURE_REASONS:
            self._failures.labels(reason)

    # BrokerMetrics hooks (the others: BrokerCounters)
    def batch_handled(self, queue: str, size: int, seconds: float) -> None:
        """A batch committed: its size and how long it took."""
        self._batch.labels(queue).observe(size)
        self._fold.labels(queue).observe(seconds)

    # the registry client's hook
    def registry_request(self, method: str, status: int | None) -> None:
        """One registry request sent, answered with ``status`` (None: no answer)."""
        self._requests.labels(method, "none" if status is None else str(status)).inc()

    # the worker's own
    def events_appended(self, counts: Mapping[str, int]) -> None:
        """New events by type."""
        for type_name, count in counts.items():
            self._events.labels(type_name).inc(count)

    def refresh_finished(
        self, summary: RefreshCompleted | RefreshFailed, reason: str | None = None
    ) -> None:
        """A refresh ended: its duration; a failed one counted under its reason class."""
        status = "completed" if isinstance(summary, RefreshCompleted) else "failed"
        self._refresh.labels(status).observe(summary.duration_seconds)
        if isinstance(summary, RefreshFailed):
            self.refresh_failed(reason or "registry")

    def refresh_failed(self, reason: str) -> None:
        """A refresh failed (recorded or not), under its reason class."""
        self._failures.labels(reason).inc()

    def set_refresh_interval(self, registry: str, repository: str, seconds: float) -> None:
        """The configured refresh interval of a source."""
        self._interval.labels(registry, repository).set(seconds)

    def set_consumers(self, counts: Mapping[str, int]) -> None:
        """Consumers held per queue now (the counters of each queue start at 0)."""
        for queue, count in counts.items():
            self._consumers.labels(queue).set(count)
            self._consumed.labels(queue)
            self._retried.labels(queue)

    def set_figures(self, figures: LedgerFigures) -> None:
        """The ledger's gauges, as read now."""
        self._ledger.figures = figures

    def render(self) -> bytes:
        """The text exposition format."""
        return bytes(generate_latest(self.registry))


class _LedgerCollector(Collector):
    """The gauges of the last `LedgerFigures` read (none before the first read)."""

    def __init__(self) -> None:
        self.figures: LedgerFigures | None = None

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterable[Metric]:
        figures = self.figures
        if figures is None:
            return []
        source = [figures.registry, figures.repository]
        last = GaugeMetricFamily(
            "imageledger_refresh_last_success_timestamp_seconds",
            "When the newest completed refresh of the source finished (Unix time)",
            labels=["registry", "repository"],
        )
        if figures.last_refresh_success is not None:
            last.add_metric(source, figures.last_refresh_success.timestamp())
        return [last, *_target_families(figures), *_state_families(figures)]


def _target_families(figures: LedgerFigures) -> list[Metric]:
    families = {
        "eligible": GaugeMetricFamily(
            "imageledger_prepull_target_eligible_nodes",
            "Counted (eligible, current) nodes, per prepull target", labels=_TARGET,
        ),
        "present": GaugeMetricFamily(
            "imageledger_prepull_target_present_nodes",
            "Counted nodes that have the prepull target", labels=_TARGET,
        ),
        "missing": GaugeMetricFamily(
            "imageledger_prepull_target_missing_nodes",
            "Counted nodes that lack the prepull target", labels=_TARGET,
        ),
        "age": GaugeMetricFamily(
            "imageledger_prepull_target_oldest_missing_age_seconds",
            "How long the longest-waiting counted node has lacked the prepull target",
            labels=_TARGET,
        ),
    }  # fmt: skip
    for t in figures.targets:
        labels = [t.registry, t.repository, t.tag]
        families["eligible"].add_metric(labels, t.eligible_nodes)
        families["present"].add_metric(labels, t.present_nodes)
        families["missing"].add_metric(labels, t.missing_nodes)
        families["age"].add_metric(labels, t.oldest_missing_age_seconds)
    return list(families.values())


def _state_families(figures: LedgerFigures) -> list[Metric]:
    prepulls = GaugeMetricFamily(
        "imageledger_prepulls", "(image, node) pairs by prepull state", labels=["state"]
    )
    for state in PREPULL_STATES:
        prepulls.add_metric([state], figures.prepulls.get(state, 0))
    backlog = GaugeMetricFamily("imageledger_outbox_backlog", "Unpublished outbox rows")
    backlog.add_metric([], figures.outbox_backlog)
    oldest = GaugeMetricFamily(
        "imageledger_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row"
    )
    oldest.add_metric([], figures.outbox_oldest_age_seconds)
    return [prepulls, backlog, oldest]
