"""One watch request of a list endpoint, as (kind, resource version, object) triples."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from kubernetes_asyncio.watch import Watch

from worker.adapters.kube.errors import kube_errors
from worker.domain.cluster import WatchEventKind

__all__ = ["CONNECT_SECONDS", "watch_events"]

CONNECT_SECONDS = 10.0
"""How long connecting to the API server may take."""

_READ_SLACK = 30.0


async def watch_events(
    list_call: Callable[..., Awaitable[Any]],
    action: str,
    *,
    resource_version: str,
    timeout_seconds: int,
    **kwargs: Any,
) -> AsyncGenerator[tuple[WatchEventKind, str, Any], None]:
    """Watch from ``resource_version`` until the server ends the request (after at most
    ``timeout_seconds``), asking for bookmarks; yield each event's kind, resource
    version and object (a model, or the raw dict of a bookmark).

    Raises
    ------
    KubeWatchExpiredError
        The resource version is too old (410): list again.
    KubeUnavailableError
        The API server cannot be reached, stopped answering, or refused (403).
    """
    async with Watch() as watch:
        stream = watch.stream(
            list_call,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_seconds,
            _request_timeout=(CONNECT_SECONDS, timeout_seconds + _READ_SLACK),
            **kwargs,
        )
        with kube_errors(action):
            async for event in stream:
                raw = event["raw_object"]
                yield (
                    WatchEventKind(event["type"]),
                    str(raw["metadata"]["resourceVersion"]),
                    event["object"],
                )
