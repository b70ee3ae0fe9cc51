"""Docker registry HTTP client: tag lists and manifest digests, with auth, retries and costs."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import random
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from attrs import frozen
from yarl import URL

from .auth import AuthAttempt, RegistryAuthenticator
from .credentials import BasicCredentials
from .errors import (
    ManifestUnknownError,
    RegistryAuthError,
    RegistryConnectionError,
    RegistryError,
    RegistryInvalidUrlError,
    RegistryProtocolError,
    RegistryRetryBudgetExhaustedError,
    RegistryTimeoutError,
    RegistryTlsError,
    RepositoryUnknownError,
    safe_url,
)
from .stats import (
    RegistryLimits,
    RequestStats,
    RetryBudget,
)
from .transport import Response, answer_error, read_body, request_headers, ssl_context
from .wire import (
    MANIFEST_ACCEPT,
    check_tag_page,
    is_valid_digest,
    is_valid_repository,
    is_valid_tag,
    next_link,
    parse_retry_after,
    parse_tag_page,
    same_origin,
)

__all__ = ["ManifestInfo", "RegistryClient", "RequestObserver"]

RequestObserver = Callable[[str, "int | None"], None]
"""Hears every request sent: its method and status (None: no answer), e.g. for metrics."""

Logger = Any
"""A structlog bound logger (its concrete type depends on the application's configuration)."""

_HOST_RE = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")


@frozen
class ManifestInfo:
    """What a manifest HEAD tells: the digest and the manifest's media type."""

    digest: str
    media_type: str | None


class RegistryClient:
    """A client for one registry host: ``list_tags`` and ``get_digest``.

    The caller owns the aiohttp session. Requests are bounded in concurrency, time-limited,
    retried with back-off within the retry budget of the current `RequestStats`, and counted
    there and by ``on_request`` (every request, of every view). Every failure is a
    `RegistryError`.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        registry: str,
        *,
        insecure: bool = False,
        credentials: BasicCredentials | None = None,
        ca_bundle: Path | str | None = None,
        limits: RegistryLimits | None = None,
        stats: RequestStats | None = None,
        rng: random.Random | None = None,
        on_request: RequestObserver | None = None,
    ) -> None:
        if not _HOST_RE.fullmatch(registry):
            raise RegistryInvalidUrlError(f"registry must be host[:port], not {registry!r}")
        self._session = session
        self._registry = registry
        self._base_url = URL(f"{'http' if insecure else 'https'}://{registry}")
        self._limits = limits if limits is not None else RegistryLimits()
        self._ssl = ssl_context(ca_bundle)
        self._semaphore = asyncio.Semaphore(self._limits.concurrency)
        self._auth = RegistryAuthenticator(registry, credentials, insecure=insecure)
        self._rng = rng if rng is not None else random.Random()
        self._stats = stats if stats is not None else self.new_stats()
        self._on_request = on_request
        self._log = structlog.get_logger(__name__, registry=registry)

    def __repr__(self) -> str:
        return f"RegistryClient({safe_url(self._base_url)})"

    @property
    def registry(self) -> str:
        """The registry host (and port) this client talks to."""
        return self._registry

    @property
    def stats(self) -> RequestStats:
        """Where this client records its requests."""
        return self._stats

    def new_stats(self) -> RequestStats:
        """Fresh counters with a full retry budget from the limits."""
        return RequestStats(retry_budget=RetryBudget(limit=self._limits.retry_budget))

    def with_stats(self, stats: RequestStats) -> RegistryClient:
        """A view of this client (same session, tokens, concurrency) recording into ``stats``."""
        view = copy.copy(self)
        view._stats = stats
        return view

    async def list_tags(self, repository: str) -> list[str]:
        """All tags of ``repository``, following ``Link: rel="next"`` pages, first seen first."""
        _check_repository(repository)
        log = self._log.bind(repository=repository)
        page: URL | None = self._url(f"/v2/{repository}/tags/list").with_query(
            n=self._limits.page_size
        )
        visited: set[URL] = set()
        tags: dict[str, None] = {}
        while page is not None:
            if len(visited) >= self._limits.max_pages:
                raise RegistryProtocolError(
                    f"more than {self._limits.max_pages} tag pages", method="GET", url=page
                )
            visited.add(page)
            response = await self._checked("GET", page, "application/json", log, repository)
            this_page, page = page, self._next_page(response)
            if page in visited:
                raise RegistryInvalidUrlError(
                    "Link header leads back to a tag page already read", method="GET", url=page
                )
            try:
                listed = parse_tag_page(response.body)
                check_tag_page(listed, tags, first=len(visited) == 1)
            except ValueError as exc:
                raise RegistryProtocolError(
                    f"unusable tag list: {exc}",
                    method="GET",
                    url=this_page,
                    status=response.status,
                ) from exc
            tags.update(dict.fromkeys(listed))
            if page is not None:
                log.debug("Following Link header", url=safe_url(page), tags_so_far=len(tags))
        log.debug("Listed tags", tags=len(tags), pages=len(visited))
        return list(tags)

    async def get_digest(self, repository: str, tag: str) -> str:
        """The digest of the manifest (or index) ``repository:tag`` points to."""
        return (await self.get_manifest_info(repository, tag)).digest

    async def get_manifest_info(self, repository: str, tag: str) -> ManifestInfo:
        """HEAD the manifest; GET and hash it when the registry omits the digest header."""
        _check_repository(repository)
        if not (is_valid_tag(tag) or is_valid_digest(tag)):
            raise RegistryInvalidUrlError(f"invalid tag {tag!r}")
        url = self._url(f"/v2/{repository}/manifests/{tag}")
        log = self._log.bind(repository=repository, tag=tag)
        method = "HEAD"
        response = await self._checked(method, url, MANIFEST_ACCEPT, log, repository)
        digest = response.headers.get("Docker-Content-Digest")
        if digest is None:
            log.debug("No Docker-Content-Digest on HEAD, hashing the manifest")
            method = "GET"
            response = await self._checked(method, url, MANIFEST_ACCEPT, log, repository)
            digest = response.headers.get("Docker-Content-Digest")
            if digest is None:
                digest = "sha256:" + hashlib.sha256(response.body).hexdigest()
        digest = digest.strip()
        if not is_valid_digest(digest):
            raise RegistryProtocolError(
                "registry sent a malformed digest", method=method, url=url, status=response.status
            )
        media_type = response.headers.get("Content-Type")
        media_type = media_type.split(";", 1)[0].strip() if media_type else None
        log.debug("Resolved tag", digest=digest)
        return ManifestInfo(digest=digest, media_type=media_type)

    async def get_api(
        self,
        url: URL,
        authorization: Callable[[], Awaitable[str]],
        renew: Callable[[], Awaitable[None]],
    ) -> bytes:
        """GET a JSON document of an HTTP API on this host (not the registry API) with the
        retries, budget and costs of registry requests; ``authorization`` gives the header
        of each attempt, and a 401 calls ``renew`` once before the request is tried again."""
        renewed = False

        async def headers() -> dict[str, str]:
            return request_headers("application/json", await authorization())

        async def unauthorized(response: Response) -> None:
            nonlocal renewed
            if renewed:
                raise answer_error("GET", url, response, RegistryAuthError)
            renewed = True
            await renew()

        response = await self._exchange("GET", url, headers, unauthorized, self._log)
        if 200 <= response.status < 300:
            return response.body
        raise answer_error("GET", url, response, RepositoryUnknownError)

    def _url(self, path: str) -> URL:
        return self._base_url.with_path(path, encoded=True)

    def _next_page(self, response: Response) -> URL | None:
        """The next tag page from the ``Link`` header, checked to stay on this registry."""
        try:
            target = next_link(response.headers.getall("Link", []))
            if target is None:
                return None
            resolved = response.url.join(URL(target)).with_fragment(None)
        except ValueError as exc:
            raise RegistryProtocolError(
                f"malformed Link header: {exc}", method="GET", url=response.url
            ) from exc
        if not same_origin(resolved, self._base_url) or resolved.user or resolved.password:
            raise RegistryInvalidUrlError(
                "Link header points outside the registry", method="GET", url=resolved
            )
        return resolved

    async def _checked(
        self, method: str, url: URL, accept: str, log: Logger, repository: str
    ) -> Response:
        """A registry request that must succeed (2xx); anything else raises."""
        attempt = AuthAttempt(fetch_token=self._fetch_token)

        async def headers() -> dict[str, str]:
            authorization = await self._auth.authorization(repository, attempt)
            return request_headers(accept, authorization)

        async def unauthorized(response: Response) -> None:
            challenges = response.headers.getall("WWW-Authenticate", [])
            await self._auth.unauthorized(repository, challenges, attempt, url=url, method=method)

        response = await self._exchange(method, url, headers, unauthorized, log)
        if 200 <= response.status < 300:
            return response
        not_found = ManifestUnknownError if "/manifests/" in url.path else RepositoryUnknownError
        raise answer_error(method, url, response, not_found)

    async def _fetch_token(self, url: URL, authorization: str | None) -> bytes:
        """GET a token URL (used by the authenticator); 401/403 are auth errors."""
        self._stats.token_requests += 1

        async def headers() -> dict[str, str]:
            return request_headers("application/json", authorization)

        response = await self._exchange("GET", url, headers, None, self._log)
        if response.status in (401, 403):
            raise RegistryAuthError(
                "token service refused the request", method="GET", url=url, status=response.status
            )
        if response.status != 200:
            raise answer_error("GET", url, response, RegistryAuthError)
        return response.body

    async def _exchange(
        self,
        method: str,
        url: URL,
        headers: Callable[[], Awaitable[dict[str, str]]],
        unauthorized: Callable[[Response], Awaitable[None]] | None,
        log: Logger,
    ) -> Response:
        """Send until an answer that is not transient; retry failures within the budget."""
        failures = 0
        while True:
            try:
                response = await self._send(method, url, await headers())
            except RegistryTlsError:
                raise
            except (RegistryTimeoutError, RegistryConnectionError) as failure:
                await self._back_off(failure, failures, None, log)
                failures += 1
                continue
            if response.status == 401 and unauthorized is not None:
                await unauthorized(response)
                continue
            if response.status == 429 or response.status >= 500:
                error = answer_error(method, url, response, RegistryError)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                await self._back_off(error, failures, retry_after, log)
                failures += 1
                continue
            return response

    async def _back_off(
        self, error: RegistryError, failures: int, retry_after: float | None, log: Logger
    ) -> None:
        """Sleep before a retry, or raise when the attempts or the budget are spent."""
        if failures + 1 >= self._limits.max_attempts:
            raise error
        budget = self._stats.retry_budget
        if not budget.try_spend():
            raise RegistryRetryBudgetExhaustedError(
                f"retry budget of {budget.limit} retries is spent; last failure: {error.message}",
                method=error.method,
                url=error.url,
                status=error.status,
            ) from error
        self._stats.retries += 1
        if retry_after is not None:
            delay = min(retry_after, self._limits.retry_after_max)
        else:
            ceiling = min(self._limits.backoff_max, self._limits.backoff_base * 2**failures)
            delay = self._rng.uniform(0, ceiling)
        log.warning(
            "Retrying registry request",
            method=error.method,
            url=error.url,
            status=error.status,
            error=error.message,
            attempt=failures + 1,
            delay=round(delay, 3),
        )
        await asyncio.sleep(delay)

    async def _send(self, method: str, url: URL, headers: dict[str, str]) -> Response:
        """One HTTP exchange under the concurrency bound and the timeout, counted."""
        timeout = aiohttp.ClientTimeout(total=self._limits.request_timeout)
        async with self._semaphore:
            try:
                async with self._session.request(
                    method, url, headers=headers, timeout=timeout, ssl=self._ssl
                ) as resp:
                    body = (
                        b""
                        if method == "HEAD"
                        else await read_body(resp, method, url, self._limits.max_body_bytes)
                    )
                    self._stats.record_response(method, resp.status, resp.headers)
                    self._observe(method, resp.status)
                    self._stats.bytes_received += len(body)
                    return Response(resp.status, resp.headers, body, resp.url)
            except TimeoutError as exc:
                message = f"no answer within {self._limits.request_timeout} s"
                raise self._no_answer(method, url, RegistryTimeoutError, message) from exc
            except aiohttp.ClientSSLError as exc:
                message = f"TLS failed: {type(exc).__name__}"
                raise self._no_answer(method, url, RegistryTlsError, message) from exc
            except aiohttp.ClientError as exc:
                message = f"connection failed: {type(exc).__name__}"
                raise self._no_answer(method, url, RegistryConnectionError, message) from exc

    def _no_answer(
        self, method: str, url: URL, error: type[RegistryError], message: str
    ) -> RegistryError:
        """Count a request that got no answer; the error to raise for it."""
        self._stats.record_no_response(method, timeout=error is RegistryTimeoutError)
        self._observe(method, None)
        return error(message, method=method, url=url)

    def _observe(self, method: str, status: int | None) -> None:
        if self._on_request is not None:
            self._on_request(method, status)


def _check_repository(repository: str) -> None:
    if not is_valid_repository(repository):
        raise RegistryInvalidUrlError(f"invalid repository name {repository!r}")
