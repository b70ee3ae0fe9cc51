"""Nodes: list and watch them, as ClusterNode values."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from kubernetes_asyncio.client import ApiClient, CoreV1Api, V1Node

from worker.adapters.kube.errors import kube_errors
from worker.adapters.kube.watch import listed, watch_read
from worker.domain.cluster import ClusterNode, NodeEvent, NodeListing
from worker.domain.nodes import KubeletImage, Taint

__all__ = ["KubeNodes", "read_node"]


def read_node(node: V1Node) -> ClusterNode:
    """A node's labels, taints, kubelet image list and identity."""
    meta, spec, status = node.metadata, node.spec, node.status
    taints = (spec.taints if spec is not None else None) or []
    images = (status.images if status is not None else None) or []
    return ClusterNode(
        name=meta.name,
        uid=meta.uid or "",
        resource_version=meta.resource_version or "",
        labels=dict(meta.labels or {}),
        taints=tuple(Taint(key=t.key, effect=t.effect, value=t.value) for t in taints),
        images=tuple(KubeletImage(tuple(i.names or ()), i.size_bytes) for i in images),
        unschedulable=bool(spec is not None and spec.unschedulable),
    )


class KubeNodes:
    """The cluster's nodes (cluster scope: get, list, watch)."""

    def __init__(
        self, api: ApiClient, *, request_seconds: float = 30.0, watch_seconds: int = 300
    ) -> None:
        self._core = CoreV1Api(api)
        self._request_seconds = request_seconds
        self._watch_seconds = watch_seconds

    async def list_nodes(self) -> NodeListing:
        """Every node, and the resource version to watch from.

        Raises
        ------
        KubeUnavailableError
            The API server cannot be reached or refused (``KubeForbiddenError``).
        """
        with kube_errors("list nodes"):
            answer = await self._core.list_node(_request_timeout=self._request_seconds)
        return NodeListing(*listed(answer, read_node))

    def watch_nodes(self, resource_version: str) -> AsyncGenerator[NodeEvent, None]:
        """Node changes after ``resource_version``, with bookmarks, until the server ends
        the watch (a few minutes at most); then watch again from the last version. Raises
        as ``watch.watch_events`` does (``KubeWatchExpiredError``: list again)."""
        return watch_read(
            self._core.list_node,
            "watch nodes",
            read_node,
            NodeEvent,
            resource_version=resource_version,
            timeout_seconds=self._watch_seconds,
        )
