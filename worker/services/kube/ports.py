"""What the Kubernetes bridge needs of the outside: the cluster, and a message publisher."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Protocol

from attrs import define, field

from worker.domain.cluster import NodeEvent, NodeListing, PodEvent, PodListing
from worker.domain.messages import InboundMessage, PrepullRequestedMessage

__all__ = ["BridgeCounters", "NodeSource", "PodCreator", "PodTracker", "Publisher"]


class NodeSource(Protocol):
    """The cluster's nodes (``worker.adapters.kube.KubeNodes``)."""

    async def list_nodes(self) -> NodeListing:
        """Every node and the version to watch from; raises KubeError."""

    def watch_nodes(self, resource_version: str) -> AsyncGenerator[NodeEvent, None]:
        """Changes after ``resource_version`` until the server ends the watch; raises
        KubeWatchExpiredError (list again) or another KubeError."""


class PodCreator(Protocol):
    """Creates prepull pods (``worker.adapters.kube.KubePods``)."""

    async def create_prepull_pod(self, request: PrepullRequestedMessage, now: datetime) -> str:
        """Create the request's pod, or find it existing; return its name. Raises
        KubeUnavailableError (retry later) or KubeRejectedError (never valid)."""


class PodTracker(Protocol):
    """Follows and removes the bridge's prepull pods (``worker.adapters.kube.KubePods``)."""

    async def list_prepull_pods(self) -> PodListing:
        """Every prepull pod and the version to watch from; raises KubeError."""

    def watch_prepull_pods(self, resource_version: str) -> AsyncGenerator[PodEvent, None]:
        """Changes after ``resource_version`` until the server ends the watch; raises
        KubeWatchExpiredError (list again) or another KubeError."""

    async def delete_pod(self, name: str) -> None:
        """Delete a prepull pod (gone already is fine); raises KubeError."""


class Publisher(Protocol):
    """Publishes a message and returns once the broker has it (the broker connection's
    ``publish_message``); raises an ImageLedgerError when it cannot."""

    async def publish_message(self, message: InboundMessage, *, message_id: str) -> None:
        """Publish ``message`` under its routing key with ``message_id``."""


@define
class BridgeCounters:
    """What the bridge did, for its ``/metrics``: pods created, completions by outcome
    and reason (``ErrImagePull``, ``DeadlineExceeded``...), messages published, watch
    restarts by resource and cause (``expired``: 410, ``error``: unreachable or refused)."""

    pods_created: int = 0
    requests_expired: int = 0
    completions: Counter[tuple[str, str]] = field(factory=Counter)
    published: Counter[str] = field(factory=Counter)
    watch_restarts: Counter[tuple[str, str]] = field(factory=Counter)
