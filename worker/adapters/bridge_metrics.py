"""Prometheus metrics of the Kubernetes bridge (``imageledger kube``), on a registry of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from worker.adapters.broker_counters import BrokerCounters

__all__ = ["BridgeCounts", "BridgeMetrics", "BridgeState"]


class BridgeCounts(Protocol):
    """What the bridge's services count (``worker.services.kube.BridgeCounters``)."""

    @property
    def pods_created(self) -> int:
        """Prepull pods created."""

    @property
    def requests_expired(self) -> int:
        """Requests past their deadline on arrival."""

    @property
    def completions(self) -> Mapping[tuple[str, str], int]:
        """Reports by (outcome, reason)."""

    @property
    def watch_restarts(self) -> Mapping[tuple[str, str], int]:
        """Watches started again by (resource, cause)."""


BridgeState = Callable[[], tuple[int, int, bool]]
"""Read at scrape time: nodes watched, prepull pods running, and whether both the node and
the pod listings are synced."""


class _CountersCollector(Collector):
    """The services' counters and state, read when Prometheus scrapes."""

    def __init__(self, counters: BridgeCounts, state: BridgeState) -> None:
        self._counters = counters
        self._state = state

    def collect(self) -> Iterator[Metric]:
        nodes, running, synced = self._state()
        c = self._counters
        yield GaugeMetricFamily(
            "imageledger_bridge_nodes_watched", "Nodes of the cluster, as last seen", value=nodes
        )
        yield GaugeMetricFamily(
            "imageledger_bridge_pods_running", "Prepull pods not finished yet", value=running
        )
        yield GaugeMetricFamily(
            "imageledger_bridge_synced", "1 once nodes and pods are listed", value=int(synced)
        )
        yield CounterMetricFamily(
            "imageledger_bridge_pods_created", "Prepull pods created", value=c.pods_created
        )
        yield CounterMetricFamily(
            "imageledger_bridge_requests_expired",
            "Prepull requests past their deadline (no pod)",
            value=c.requests_expired,
        )
        yield _by_labels(
            "imageledger_bridge_pods_completed",
            "Prepull pods reported, by outcome and reason",
            ["outcome", "reason"],
            c.completions,
        )
        yield _by_labels(
            "imageledger_bridge_watch_restarts",
            "Watches started again, by resource and cause (expired: 410; error)",
            ["resource", "cause"],
            c.watch_restarts,
        )


def _by_labels(
    name: str, documentation: str, labels: list[str], counts: Mapping[tuple[str, str], int]
) -> CounterMetricFamily:
    """A counter family with one series per label pair, in sorted order."""
    family = CounterMetricFamily(name, documentation, labels=labels)
    for values, count in sorted(counts.items()):
        family.add_metric(list(values), count)
    return family


class BridgeMetrics(BrokerCounters):
    """The bridge's counters (from the services) and the broker's hooks (``BrokerMetrics``)
    for its request queue and its publishes."""

    def __init__(self, counters: BridgeCounts, state: BridgeState) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        r.register(_CountersCollector(counters, state))
        self._consumed = Counter(
            "imageledger_bridge_requests_consumed", "Prepull requests handed to the launcher",
            ["queue"], registry=r,
        )  # fmt: skip
        self._retried = Counter(
            "imageledger_bridge_requests_retried", "Prepull requests sent to the delay queue",
            ["queue"], registry=r,
        )  # fmt: skip
        self._dead = Counter(
            "imageledger_bridge_requests_dead_lettered", "Prepull requests dead-lettered",
            ["routing_key", "reason"], registry=r,
        )  # fmt: skip
        self._published = Counter(
            "imageledger_bridge_messages_published", "Confirmed publishes", ["routing_key"],
            registry=r,
        )  # fmt: skip

    def batch_handled(self, queue: str, size: int, seconds: float) -> None:
        """Nothing: the bridge's batches are its launches, counted as pods created."""

    def render(self) -> bytes:
        """The text exposition format."""
        return bytes(generate_latest(self.registry))
