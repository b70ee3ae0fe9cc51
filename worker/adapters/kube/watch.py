"""One watch request of a list endpoint, as (kind, resource version, object) triples."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import aclosing
from typing import Any, TypeVar

from kubernetes_asyncio.watch import Watch

from worker.adapters.kube.errors import kube_errors
from worker.domain.cluster import WatchEventKind

__all__ = ["CONNECT_SECONDS", "listed", "watch_events", "watch_read"]

CONNECT_SECONDS = 10.0
"""How long connecting to the API server may take."""

_READ_SLACK = 30.0

_T = TypeVar("_T")
_E = TypeVar("_E")


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


async def watch_read(
    list_call: Callable[..., Awaitable[Any]],
    action: str,
    read: Callable[[Any], _T],
    event: Callable[[WatchEventKind, str, _T | None], _E],
    *,
    resource_version: str,
    timeout_seconds: int,
    **kwargs: Any,
) -> AsyncGenerator[_E, None]:
    """`watch_events` as domain events: each object ``read`` (None for a bookmark) and
    handed to ``event`` with its kind and resource version. Raises as `watch_events`."""
    events = watch_events(
        list_call,
        action,
        resource_version=resource_version,
        timeout_seconds=timeout_seconds,
        **kwargs,
    )
    async with aclosing(events):
        async for kind, version, obj in events:
            yield event(kind, version, None if kind is WatchEventKind.BOOKMARK else read(obj))


def listed(answer: Any, read: Callable[[Any], _T]) -> tuple[tuple[_T, ...], str]:
    """A list answer's objects, each ``read``, and the resource version to watch from."""
    items: Iterable[Any] = answer.items or []
    return tuple(read(item) for item in items), answer.metadata.resource_version or ""
