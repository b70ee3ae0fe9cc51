"""Google Artifact Registry as a live source: ``dockerImages.list`` of the repository, every
page, as the refresh's tag source; HEADs on ``{location}-docker.pkg.dev`` with the same
token for tags the listing does not know.

The listing goes through a `RegistryClient` on the API's host, so its requests have the
retries (500, 503, 429 with ``Retry-After``), the retry budget and the costs of registry
requests. A listing is used whole or not at all: a page that still fails after the retries
fails the listing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import aiohttp
import structlog
from yarl import URL

from worker.converter import GarImage, ValidationError, gar_page, gar_tag_entries
from worker.domain.errors import SourceUnavailableError
from worker.domain.images import Repository
from worker.domain.refresh import HeadFailed, HeadFound, HeadMissing, HeadResult, RefreshCost

from .client import RegistryClient, RequestObserver
from .errors import RegistryError, RegistryProtocolError, safe_url
from .google_tokens import GoogleAccessTokens
from .source import RegistryTagSource, refresh_cost
from .stats import RegistryLimits

__all__ = ["ArtifactRegistryLister", "ArtifactRegistryTagSource", "GoogleHeads"]

log = structlog.get_logger("imageledger.registry.google")


class ArtifactRegistryLister:
    """``projects.locations.repositories.dockerImages.list`` of one repository."""

    def __init__(
        self, client: RegistryClient, url: URL, tokens: GoogleAccessTokens, limits: RegistryLimits
    ) -> None:
        self._client = client
        self._url = url
        self._tokens = tokens
        self._limits = limits

    @classmethod
    def connect(
        cls,
        session: aiohttp.ClientSession,
        endpoint: str,
        parent: tuple[str, str, str],
        tokens: GoogleAccessTokens,
        *,
        limits: RegistryLimits | None = None,
        on_request: RequestObserver | None = None,
    ) -> ArtifactRegistryLister:
        """A lister of ``parent`` (project, location, repository) on the API at ``endpoint``."""
        base = URL(endpoint)
        host = base.raw_host or ""
        authority = host if base.explicit_port is None else f"{host}:{base.explicit_port}"
        limits = limits if limits is not None else RegistryLimits()
        client = RegistryClient(
            session, authority, insecure=base.scheme == "http", limits=limits, on_request=on_request
        )
        project, location, repository = parent
        url = base.with_path("/v1").joinpath(
            "projects", project, "locations", location, "repositories", repository, "dockerImages"
        )
        return cls(client, url, tokens, limits)

    def __repr__(self) -> str:
        return f"ArtifactRegistryLister({safe_url(self._url)})"

    @property
    def client(self) -> RegistryClient:
        """The client its requests go through (and are counted by)."""
        return self._client

    def with_stats(self) -> ArtifactRegistryLister:
        """A view counting its requests apart (one per refresh), with a full retry budget."""
        client = self._client.with_stats(self._client.new_stats())
        return ArtifactRegistryLister(client, self._url, self._tokens, self._limits)

    async def list_images(self) -> list[GarImage]:
        """Every image of the repository, all pages; RegistryError if any page fails."""
        images: list[GarImage] = []
        seen: set[str] = set()
        token: str | None = None
        while True:
            if len(seen) >= self._limits.max_pages:
                raise RegistryProtocolError(
                    f"more than {self._limits.max_pages} pages", method="GET", url=self._url
                )
            query = {"pageSize": str(self._limits.page_size)}
            if token is not None:
                query["pageToken"] = token
            url = self._url.with_query(query)
            body = await self._client.get_api(url, self._bearer, self._tokens.renew)
            try:
                page, token = gar_page(json.loads(body))
            except (ValueError, ValidationError) as exc:
                raise RegistryProtocolError(
                    f"unusable dockerImages page: {exc}", method="GET", url=url, status=200
                ) from exc
            images.extend(page)
            if token is None:
                log.debug("Listed images", images=len(images), pages=len(seen) + 1)
                return images
            if token in seen:
                raise RegistryProtocolError("page token repeats", method="GET", url=url)
            seen.add(token)

    async def _bearer(self) -> str:
        return f"Bearer {await self._tokens.token()}"


class ArtifactRegistryTagSource:
    """One refresh's view of a Google source: the whole listing is its truth.

    ``list_tags`` reads every page; ``resolve`` answers from that listing (no HEADs): a
    listed tag is found with the listing's digest, any other tag is gone.
    """

    complete = True
    """A listing carries every digest and is authoritative (removals need no HEAD)."""

    def __init__(
        self,
        lister: ArtifactRegistryLister,
        repository: Repository,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self._lister = lister.with_stats()
        self._repository = repository
        self._progress = progress
        self._digests: dict[str, str] = {}

    @property
    def repository(self) -> Repository:
        """The repository listed (``{location}-docker.pkg.dev/{project}/{repo}/{image}``)."""
        return self._repository

    async def list_tags(self) -> list[str]:
        """Every tag of the image, from the images of its package only."""
        try:
            images = await self._lister.list_images()
        except RegistryError as exc:
            raise SourceUnavailableError(str(exc), exc.reason_class) from exc
        entries = gar_tag_entries(images, self._repository)
        self._digests = {e.tag: e.digest for e in entries if e.digest is not None}
        return list(self._digests)

    async def resolve(self, tags: Sequence[str]) -> Mapping[str, HeadResult]:
        """Each tag's digest as listed; a tag the listing left out is gone."""
        results: dict[str, HeadResult] = {}
        for tag in tags:
            digest = self._digests.get(tag)
            results[tag] = HeadMissing() if digest is None else HeadFound(digest)
        if self._progress is not None:
            self._progress(len(tags), len(tags))
        return results

    def cost(self) -> RefreshCost:
        """Requests made so far, for the refresh summary."""
        return refresh_cost(self._lister.client)


class GoogleHeads:
    """HEADs on ``{location}-docker.pkg.dev`` (for tags the listing does not know), the
    access token renewed first: the client sends it as ``oauth2accesstoken``'s password."""

    def __init__(self, heads: RegistryTagSource, tokens: GoogleAccessTokens) -> None:
        self._heads = heads
        self._tokens = tokens

    async def resolve(self, tags: Sequence[str]) -> Mapping[str, HeadResult]:
        """The digest of each tag, or why not."""
        try:
            await self._tokens.token()
        except RegistryError as exc:
            return {tag: HeadFailed(str(exc)) for tag in tags}
        return await self._heads.resolve(tags)
