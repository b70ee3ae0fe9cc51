"""A registry repository as the refresh's tag source: client errors become domain results."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

import structlog

from worker.domain.errors import SourceUnavailableError
from worker.domain.images import Repository
from worker.domain.refresh import HeadFailed, HeadFound, HeadMissing, HeadResult, RefreshCost

from .client import RegistryClient
from .errors import ManifestUnknownError, RegistryError

__all__ = ["RegistryTagSource", "refresh_cost"]

log = structlog.get_logger("imageledger.registry")


class RegistryTagSource:
    """One refresh's view of a repository: its own request statistics and retry budget."""

    def __init__(
        self,
        client: RegistryClient,
        repository: Repository,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self._client = client.with_stats(client.new_stats())
        self._repository = repository
        self._progress = progress

    @property
    def repository(self) -> Repository:
        """The repository listed."""
        return self._repository

    async def list_tags(self) -> list[str]:
        """Every tag of the repository."""
        try:
            return await self._client.list_tags(self._repository.repository)
        except RegistryError as exc:
            raise SourceUnavailableError(str(exc), exc.reason_class) from exc

    async def resolve(self, tags: Sequence[str]) -> Mapping[str, HeadResult]:
        """HEAD each tag (the client bounds concurrency); failures become results.

        The progress callback, if any, hears ``(done, total)`` as the HEADs finish."""
        done = 0

        async def head(tag: str) -> HeadResult:
            nonlocal done
            result = await self._head(tag)
            done += 1
            if self._progress is not None:
                self._progress(done, len(tags))
            return result

        results = await asyncio.gather(*(head(tag) for tag in tags))
        return dict(zip(tags, results, strict=True))

    async def _head(self, tag: str) -> HeadResult:
        try:
            return HeadFound(await self._client.get_digest(self._repository.repository, tag))
        except ManifestUnknownError:
            return HeadMissing()
        except RegistryError as exc:
            log.warning(
                "cannot fetch digest",
                registry=self._repository.registry,
                repository=self._repository.repository,
                tag=tag,
                error=str(exc),
            )
            return HeadFailed(str(exc))

    complete = False
    """A tag listing carries no digests, and a tag it leaves out is removed only on its own
    404 (within ``images.maxRemovalsUnconfirmed``)."""

    def cost(self) -> RefreshCost:
        """Requests made so far, for the refresh summary."""
        return refresh_cost(self._client)


def refresh_cost(client: RegistryClient) -> RefreshCost:
    """What ``client``'s requests cost so far, as the refresh summary counts it."""
    snap = client.stats.snapshot()
    return RefreshCost(
        requests=snap.requests,
        retries=snap.retries,
        bytes_received=snap.bytes_received,
        rate_limits=dict(snap.rate_limit_headers),
    )
