"""Prepull pods in one namespace: create (idempotent), list, watch and delete them."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

from kubernetes_asyncio.client import ApiClient, CoreV1Api

from worker.adapters.kube.errors import kube_call, kube_errors
from worker.adapters.kube.podspec import POD_SELECTOR, PodSettings, prepull_pod, read_prepull_pod
from worker.adapters.kube.watch import listed, watch_read
from worker.domain.cluster import PodEvent, PodListing
from worker.domain.errors import KubeUnavailableError
from worker.domain.messages import PrepullRequestedMessage

__all__ = ["KubePods"]

_CONFLICT = 409
_NOT_FOUND = 404


class KubePods:
    """The bridge's prepull pods (one namespace: create, get, list, watch, delete)."""

    def __init__(
        self,
        api: ApiClient,
        settings: PodSettings,
        *,
        request_seconds: float = 30.0,
        watch_seconds: int = 300,
    ) -> None:
        self._core = CoreV1Api(api)
        self._settings = settings
        self._namespace = settings.namespace
        self._request_seconds = request_seconds
        self._watch_seconds = watch_seconds

    async def create_prepull_pod(self, request: PrepullRequestedMessage, now: datetime) -> str:
        """Create the prepull pod of ``request`` (active until its deadline, counted from
        ``now``) and return its name once it exists. A pod of that name that exists
        already (409) is success, unless it is being deleted.

        Raises
        ------
        KubeUnavailableError
            The API server cannot be reached, refused (``KubeForbiddenError``), or the
            pod of that name is being deleted: retry later.
        KubeRejectedError
            The API server rejected the pod as invalid.
        """
        pod = prepull_pod(request, now, self._settings)
        name = pod.metadata.name
        created = await kube_call(
            f"create pod {self._namespace}/{name}",
            self._core.create_namespaced_pod(
                self._namespace, pod, _request_timeout=self._request_seconds
            ),
            tolerate=_CONFLICT,
        )
        if created is None:
            await self._check_existing(name)
        return name

    async def _check_existing(self, name: str) -> None:
        existing = await kube_call(
            f"read pod {self._namespace}/{name}",
            self._core.read_namespaced_pod(
                name, self._namespace, _request_timeout=self._request_seconds
            ),
            tolerate=_NOT_FOUND,
        )
        if existing is None or existing.metadata.deletion_timestamp is not None:
            raise KubeUnavailableError(
                f"pod {self._namespace}/{name} was being deleted; retry later"
            )

    async def list_prepull_pods(self) -> PodListing:
        """Every prepull pod of the bridge in its namespace, and the version to watch from.

        Raises
        ------
        KubeUnavailableError
            The API server cannot be reached or refused (``KubeForbiddenError``).
        """
        with kube_errors(f"list pods in {self._namespace}"):
            answer = await self._core.list_namespaced_pod(
                self._namespace,
                label_selector=POD_SELECTOR,
                _request_timeout=self._request_seconds,
            )
        return PodListing(*listed(answer, read_prepull_pod))

    def watch_prepull_pods(self, resource_version: str) -> AsyncGenerator[PodEvent, None]:
        """Changes of the bridge's prepull pods after ``resource_version``, with bookmarks,
        until the server ends the watch. Raises as ``watch.watch_events`` does
        (``KubeWatchExpiredError``: list again)."""
        return watch_read(
            self._core.list_namespaced_pod,
            f"watch pods in {self._namespace}",
            read_prepull_pod,
            PodEvent,
            resource_version=resource_version,
            timeout_seconds=self._watch_seconds,
            namespace=self._namespace,
            label_selector=POD_SELECTOR,
        )

    async def delete_pod(self, name: str) -> None:
        """Delete a prepull pod; one that is gone already is fine.

        Raises
        ------
        KubeUnavailableError
            The API server cannot be reached or refused (``KubeForbiddenError``).
        KubeRejectedError
            The API server rejected the request.
        """
        await kube_call(
            f"delete pod {self._namespace}/{name}",
            self._core.delete_namespaced_pod(
                name, self._namespace, _request_timeout=self._request_seconds
            ),
            tolerate=_NOT_FOUND,
        )
