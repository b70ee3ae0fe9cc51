"""Back-off for the bridge's loops, one log line per outage, and the list-then-watch loop."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from contextlib import aclosing
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

import structlog
from attrs import define, frozen

from worker.domain.errors import (
    ImageLedgerError,
    KubeForbiddenError,
    KubeRejectedError,
    KubeWatchExpiredError,
)
from worker.services.kube.ports import BridgeCounters

__all__ = ["Backoff", "Health", "follow", "list_and_watch"]

log = structlog.get_logger("imageledger.kube")
E = TypeVar("E")


@frozen
class Backoff:
    """Delays after consecutive failures: ``initial`` times ``factor`` per failure, at
    most ``maximum``, each spread by ``jitter`` (a fraction) either way."""

    initial: timedelta = timedelta(seconds=1)
    maximum: timedelta = timedelta(seconds=60)
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (from 1)."""
        base = self.initial.total_seconds() * self.factor ** max(0, failures - 1)
        base = min(base, self.maximum.total_seconds())
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


@define
class Health:
    """Failures in a row of one loop: the first of an outage is logged as a warning (a
    refusal names the Role), the rest at debug, and the recovery once."""

    what: str
    backoff: Backoff
    failures: int = 0

    def failed(self, exc: ImageLedgerError) -> float:
        """Record a failure; returns the seconds to wait before trying again."""
        self.failures += 1
        delay = self.backoff.delay(self.failures)
        if self.failures == 1:
            hint = (
                "check the bridge's Role and binding"
                if isinstance(exc, KubeForbiddenError)
                else None
            )
            log.warning(f"{self.what} failed; retrying with back-off", error=str(exc), hint=hint)
        else:
            log.debug(f"{self.what} failed again", error=str(exc), failures=self.failures)
        return delay

    def recovered(self) -> None:
        """Record a success; logs the end of an outage."""
        if self.failures:
            log.info(f"{self.what} works again", failures=self.failures)
            self.failures = 0


async def list_and_watch(
    resource: str,
    relist: Callable[[], Awaitable[str]],
    watch: Callable[[str], AsyncGenerator[E, None]],
    apply: Callable[[E], Awaitable[str]],
    *,
    backoff: Backoff,
    counters: BridgeCounters,
) -> NoReturn:
    """List, then watch from the listed version, forever: ``apply`` each event (it
    returns the event's version, the one to resume from); a watch the server ends is
    resumed; an expired version (410) lists again; any other failure (API server away,
    refused, broker away) waits with back-off and resumes from the last version."""
    health = Health(f"{resource}: list and watch", backoff)
    version: str | None = None
    while True:
        try:
            if version is None:
                version = await relist()
                health.recovered()
            async with aclosing(watch(version)) as events:
                async for event in events:
                    version = await apply(event)
                    health.recovered()
        except KubeWatchExpiredError:
            log.info(f"{resource}: watch expired; listing again", resource_version=version)
            counters.watch_restarts[(resource, "expired")] += 1
            version = None
        except ImageLedgerError as exc:
            counters.watch_restarts[(resource, "error")] += 1
            if isinstance(exc, KubeRejectedError):
                version = None
            await asyncio.sleep(health.failed(exc))


async def follow(
    resource: str,
    relist: Callable[[], Awaitable[str]],
    watch: Callable[[str], AsyncGenerator[E, None]],
    apply: Callable[[E], Awaitable[str]],
    alongside: Callable[[], Coroutine[Any, Any, None]],
    *,
    backoff: Backoff,
    counters: BridgeCounters,
) -> None:
    """`list_and_watch` a resource with ``alongside`` (a periodic sweep or report) in the
    same task group, until cancelled."""
    async with asyncio.TaskGroup() as group:
        group.create_task(
            list_and_watch(resource, relist, watch, apply, backoff=backoff, counters=counters)
        )
        group.create_task(alongside())
