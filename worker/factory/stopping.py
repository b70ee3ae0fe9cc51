"""Waiting for a start-up step unless the process is told to stop first."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

__all__ = ["connect_unless_stopped", "unless_stopped"]


async def unless_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``work`` unless ``stop`` is set first: True when it finished (its error is
    raised), False when ``stop`` came first and ``work`` was cancelled."""
    working = asyncio.create_task(work)
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if working in done:
        working.result()
        return True
    working.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await working
    return False


async def connect_unless_stopped(
    connect: Coroutine[Any, Any, None], stop: asyncio.Event, log: Any, who: str
) -> bool:
    """Connect to RabbitMQ (``connect``) unless ``stop`` is set first; False when it was,
    and ``log`` says that ``who`` (the worker, the bridge) stopped before it was reached."""
    if await unless_stopped(connect, stop):
        return True
    log.info(f"{who} stopped before RabbitMQ was reached")
    return False
