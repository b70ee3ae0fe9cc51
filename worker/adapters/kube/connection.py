"""Connecting to the API server: a kubeconfig file, or the pod's service account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.config import ConfigException, load_incluster_config, load_kube_config

from worker.adapters.kube.nodes import KubeNodes
from worker.adapters.kube.pods import KubePods
from worker.adapters.kube.podspec import PodSettings
from worker.domain.errors import KubeError

__all__ = ["KubeConnection", "connect"]


class KubeConnection:
    """One API client (one connection pool) for the bridge's node and pod clients."""

    def __init__(self, api: ApiClient, *, request_seconds: float, watch_seconds: int) -> None:
        self._api = api
        self._request_seconds = request_seconds
        self._watch_seconds = watch_seconds

    def nodes(self) -> KubeNodes:
        """The cluster's nodes."""
        return KubeNodes(
            self._api, request_seconds=self._request_seconds, watch_seconds=self._watch_seconds
        )

    def pods(self, settings: PodSettings) -> KubePods:
        """The bridge's prepull pods in ``settings.namespace``."""
        return KubePods(
            self._api,
            settings,
            request_seconds=self._request_seconds,
            watch_seconds=self._watch_seconds,
        )


async def _configuration(kubeconfig: Path | None, context: str | None) -> Configuration:
    configuration = Configuration()
    try:
        if kubeconfig is None:
            load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await load_kube_config(
                config_file=str(kubeconfig),
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
    except (ConfigException, OSError, ValueError) as exc:
        where = f"kubeconfig {kubeconfig}" if kubeconfig else "in-cluster service account"
        raise KubeError(f"cannot configure the Kubernetes client from the {where}: {exc}") from exc
    return configuration


@asynccontextmanager
async def connect(
    kubeconfig: Path | None = None,
    *,
    context: str | None = None,
    request_seconds: float = 30.0,
    watch_seconds: int = 300,
) -> AsyncIterator[KubeConnection]:
    """Connect with ``kubeconfig`` (its current context, or ``context``), or, without
    one, with the service account of the pod the bridge runs in. Requests time out after
    ``request_seconds``; watches end after ``watch_seconds`` and are then resumed.

    Raises
    ------
    KubeError
        The kubeconfig or the service account files cannot be read or used.
    """
    configuration = await _configuration(kubeconfig, context)
    api = ApiClient(configuration)
    try:
        yield KubeConnection(api, request_seconds=request_seconds, watch_seconds=watch_seconds)
    finally:
        await api.close()
