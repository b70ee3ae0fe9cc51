"""Turning kubernetes_asyncio and aiohttp failures into our own Kube* errors."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from worker.domain.errors import (
    KubeError,
    KubeForbiddenError,
    KubeRejectedError,
    KubeUnavailableError,
    KubeWatchExpiredError,
)

__all__ = ["kube_call", "kube_errors", "status_message", "translate"]

T = TypeVar("T")

_MAX_DETAIL = 300


def status_message(exc: ApiException) -> str:
    """The ``message`` of the Status the API server sent, else the HTTP reason."""
    body = exc.body
    if body:
        try:
            data = json.loads(body)
        except (ValueError, TypeError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return str(data["message"])[:_MAX_DETAIL]
    return str(exc.reason or "no reason given")[:_MAX_DETAIL]


def translate(exc: BaseException, action: str) -> KubeError:
    """The Kube* error for a failed ``action`` (e.g. ``"list nodes"``).

    401 and 403 are forbidden, 410 an expired watch, 429, 5xx and connection failures
    unavailable, any other HTTP error a rejection.
    """
    if isinstance(exc, ApiException):
        status = exc.status or 0
        detail = f"{action}: HTTP {status}: {status_message(exc)}"
        if status in (401, 403):
            return KubeForbiddenError(detail)
        if status == 410:
            return KubeWatchExpiredError(detail)
        if status in (0, 429) or status >= 500:
            return KubeUnavailableError(detail)
        return KubeRejectedError(detail)
    text = str(exc) or type(exc).__name__
    return KubeUnavailableError(f"{action}: API server unreachable: {text[:_MAX_DETAIL]}")


@contextmanager
def kube_errors(action: str) -> Iterator[None]:
    """Raise our own error, chained, for any client or connection failure in the block."""
    try:
        yield
    except KubeError:
        raise
    except (ApiException, aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise translate(exc, action) from exc


async def kube_call(action: str, call: Awaitable[T], *, tolerate: int | None = None) -> T | None:
    """Await one client call; None when it failed with the HTTP status ``tolerate`` (a 409
    on create, a 404 on delete), our own error for any other failure."""
    try:
        return await call
    except ApiException as exc:
        if tolerate is not None and exc.status == tolerate:
            return None
        raise translate(exc, action) from exc
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise translate(exc, action) from exc
