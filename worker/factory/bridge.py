"""The bridge's graph: the Kubernetes connection, the broker (the bridge's topology), the node
reporter, the completion reporter and the prepull pod launcher, built once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from attrs import evolve, frozen

from worker.adapters.bridge_metrics import BridgeMetrics
from worker.adapters.broker import Broker, BrokerSettings
from worker.adapters.kube import PodSettings, connect
from worker.config import Config
from worker.factory.application import broker_settings, utcnow
from worker.services.kube import (
    Backoff,
    BridgeCounters,
    CompletionReporter,
    CompletionSettings,
    NodeReporter,
    PrepullLauncher,
    ReporterSettings,
)

__all__ = [
    "BridgeHealth",
    "BridgeRuntime",
    "bridge_runtime",
    "bridge_settings",
    "kubeconfig",
    "pod_settings",
]


def kubeconfig(given: Path | None, config: Config) -> Path | None:
    """The kubeconfig to use: the option (or ``KUBECONFIG``), else ``kube.kubeconfig``;
    None means the service account of the pod the bridge runs in."""
    if given is not None:
        return given
    return Path(config.kube.kubeconfig) if config.kube.kubeconfig else None


def pod_settings(config: Config) -> PodSettings:
    """What prepull pods carry besides the request: ``kube.namespace``, the lab's
    tolerations and ``kube.imagePullSecret``."""
    kube = config.kube
    return PodSettings(kube.namespace, config.lab.tolerations, kube.image_pull_secret)


def bridge_settings(config: Config, url: str | None, prefix: str) -> BrokerSettings:
    """The worker's broker settings, except that a batch of requests held while the API
    server is away or refuses waits as ``kube.retryDelay`` / ``kube.maxRetryDelay`` say."""
    kube = config.kube
    return evolve(
        broker_settings(config, url, prefix),
        outage_delay=kube.retry_delay,
        max_outage_delay=kube.max_retry_delay,
    )


@frozen
class BridgeHealth:
    """Whether nodes and pods are listed (and watched) and the broker connection is up."""

    kube: bool
    broker: bool

    @property
    def ready(self) -> bool:
        """Both are."""
        return self.kube and self.broker


@frozen
class BridgeRuntime:
    """One bridge process: its services, its broker and its metrics."""

    config: Config
    broker: Broker
    nodes: NodeReporter
    completions: CompletionReporter
    launcher: PrepullLauncher
    counters: BridgeCounters
    metrics: BridgeMetrics

    @property
    def synced(self) -> bool:
        """Whether the first listings of nodes and of prepull pods are done."""
        return self.nodes.synced.is_set() and self.completions.synced.is_set()

    def health(self) -> BridgeHealth:
        """Readiness, now."""
        return BridgeHealth(self.synced, self.broker.connected)

    def scrape(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return self.metrics.render()


@asynccontextmanager
async def bridge_runtime(
    config: Config,
    settings: BrokerSettings,
    kubeconfig_path: Path | None,
    *,
    request_seconds: float = 30.0,
    watch_seconds: int = 300,
) -> AsyncIterator[BridgeRuntime]:
    """Build a bridge's graph (nothing connects yet: the API server is first asked when the
    services run); close the broker and the API client at the end.

    Raises
    ------
    KubeError
        The kubeconfig (or the service account's files) cannot be read or used.
    """
    kube = config.kube
    backoff = Backoff(initial=kube.retry_delay, maximum=kube.max_retry_delay)
    counters = BridgeCounters()
    async with connect(
        kubeconfig_path, request_seconds=request_seconds, watch_seconds=watch_seconds
    ) as cluster:

        def state() -> tuple[int, int, bool]:  # read at scrape time, once all is built
            synced = nodes.synced.is_set() and completions.synced.is_set()
            return nodes.nodes_watched, completions.pods_running, synced

        metrics = BridgeMetrics(counters, state)
        broker = Broker(settings, metrics, consumer="bridge")
        nodes = NodeReporter(
            cluster.nodes(),
            broker,
            clock=utcnow,
            settings=ReporterSettings(inventory_interval=kube.inventory_interval, backoff=backoff),
            counters=counters,
        )
        pods = cluster.pods(pod_settings(config))
        completions = CompletionReporter(
            pods,
            broker,
            clock=utcnow,
            settings=CompletionSettings(backoff=backoff),
            counters=counters,
        )
        launcher = PrepullLauncher(pods, broker, clock=utcnow, counters=counters)
        try:
            yield BridgeRuntime(config, broker, nodes, completions, launcher, counters, metrics)
        finally:
            await broker.close()
