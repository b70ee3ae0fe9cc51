"""The Kubernetes bridge's use cases, over ports: node reporter, prepull pod launcher and
completion reporter (wired to ``worker.adapters.kube`` and the broker by the factory)."""

from worker.services.kube.completions import CompletionReporter, CompletionSettings
from worker.services.kube.launcher import LaunchResult, PrepullLauncher
from worker.services.kube.node_reporter import NodeReporter, ReporterSettings
from worker.services.kube.ports import (
    BridgeCounters,
    NodeSource,
    PodCreator,
    PodTracker,
    Publisher,
)
from worker.services.kube.retry import Backoff

__all__ = [
    "Backoff",
    "BridgeCounters",
    "CompletionReporter",
    "CompletionSettings",
    "LaunchResult",
    "NodeReporter",
    "NodeSource",
    "PodCreator",
    "PodTracker",
    "PrepullLauncher",
    "Publisher",
    "ReporterSettings",
]
