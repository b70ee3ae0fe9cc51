"""The broker's metric hooks (``BrokerMetrics``) over four Prometheus counters, for any process."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["BrokerCounters"]


class BrokerCounters:
    """Counts what the broker reports: messages consumed, retried, dead-lettered, published.

    A subclass builds the four counters (its own names and help texts) and may add
    ``batch_handled``'s figures; the hooks only add to them.
    """

    _consumed: Counter
    _retried: Counter
    _dead: Counter
    _published: Counter

    def consumed(self, queue: str, count: int) -> None:
        """Messages decoded and handed to the handler."""
        self._consumed.labels(queue).inc(count)

    def dead_lettered(self, routing_key: str, reason: str, count: int) -> None:
        """Messages that went to the dead-letter queue, by routing key and reason class."""
        self._dead.labels(routing_key, reason).inc(count)

    def retried(self, queue: str, count: int) -> None:
        """Messages sent to the delay queue."""
        self._retried.labels(queue).inc(count)

    def published(self, routing_key: str, count: int) -> None:
        """Messages published and confirmed."""
        self._published.labels(routing_key).inc(count)
