"""Fresh registry HEADs for resolving, spent with care: one per tag at a time, an answer
kept for a while, and a budget per minute."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Protocol

from worker.domain.errors import ResolveRateLimitedError
from worker.domain.refresh import HeadFailed, HeadResult

__all__ = ["DigestSource", "FreshDigests"]

_PRUNE_ABOVE = 1024
"""Cached answers kept before expired ones are dropped."""


class DigestSource(Protocol):
    """The registry seen as the source of current digests (HEAD)."""

    async def resolve(self, tags: Sequence[str]) -> Mapping[str, HeadResult]:
        """The digest of each tag, or why not."""


class FreshDigests:
    """HEADs for the resolver: concurrent asks for one tag share one HEAD; an answer (found
    or missing, not a failure) stands for ``ttl``; and at most ``per_minute`` HEADs are made
    per minute (a token bucket: a burst of that many, then one every ``60 / per_minute``
    seconds). Past the budget, ``head`` raises ResolveRateLimitedError naming the wait.
    """

    def __init__(
        self,
        source: Callable[[], DigestSource],
        *,
        ttl: timedelta,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl = ttl.total_seconds()
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._tokens = self._capacity
        self._refilled = clock()
        self._answers: dict[str, tuple[float, HeadResult]] = {}
        self._pending: dict[str, asyncio.Task[HeadResult]] = {}

    async def head(self, tag: str) -> HeadResult:
        """The tag's digest, from a HEAD made now, in flight or recent."""
        now = self._clock()
        answer = self._answers.get(tag)
        if answer is not None and answer[0] > now:
            return answer[1]
        task = self._pending.get(tag)
        if task is None:
            self._spend(now)
            task = asyncio.create_task(self._fetch(tag), name=f"HEAD {tag}")
            self._pending[tag] = task
            task.add_done_callback(lambda _: self._pending.pop(tag, None))
        return await asyncio.shield(task)

    def _spend(self, now: float) -> None:
        self._tokens = min(self._capacity, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens < 1.0:
            wait = math.ceil((1.0 - self._tokens) / self._rate)
            raise ResolveRateLimitedError(
                f"too many fresh registry lookups ({self._capacity:g} a minute); retry in {wait} s",
                wait,
            )
        self._tokens -= 1.0

    async def _fetch(self, tag: str) -> HeadResult:
        result = (await self._source().resolve([tag]))[tag]
        if not isinstance(result, HeadFailed):
            now = self._clock()
            if len(self._answers) >= _PRUNE_ABOVE:
                self._answers = {t: a for t, a in self._answers.items() if a[0] > now}
            self._answers[tag] = (now + self._ttl, result)
        return result
