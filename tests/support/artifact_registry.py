"""A stand-in Artifact Registry REST API: ``dockerImages.list`` of one repository.

It speaks the documented wire format of
``GET /v1/projects/{p}/locations/{l}/repositories/{r}/dockerImages``: ``pageSize`` and
``pageToken`` pagination, ``{"dockerImages": [...], "nextPageToken": "..."}`` with the
fields in camelCase (``imageSizeBytes`` a string, as int64 is in Google's JSON), Google's
error body ``{"error": {"code", "message", "status"}}``, and a bearer-token check. Chosen
pages can be made to answer 500, 503 or 429 ``RESOURCE_EXHAUSTED`` (with or without
``Retry-After``) a number of times before they answer.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiohttp import web
from attrs import define, field, frozen
from yarl import URL

from tests.support.net import LoopbackSite

__all__ = ["ArtifactRegistryStandIn", "Fault", "ListRequest", "rest_image"]

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_DEFAULT_PAGE_SIZE = 100
_MAX_PAGE_SIZE = 1000
_TIME = "2077-10-28T13:02:39.123456Z"


@frozen
class Fault:
    """One injected failure: the status, and ``Retry-After`` seconds if any."""

    status: int
    retry_after: int | None = None


@frozen
class ListRequest:
    """One list request as the stand-in saw it."""

    path: str
    page_size: int | None
    page_token: str | None
    authorization: str | None
    status: int


def rest_image(
    project: str, location: str, repository: str, package: str, digest: str, tags: Sequence[str]
) -> dict[str, Any]:
    """One ``DockerImage`` as the REST API returns it."""
    name = f"projects/{project}/locations/{location}/repositories/{repository}"
    size = int(hashlib.sha256(digest.encode()).hexdigest()[:6], 16)
    return {
        "name": f"{name}/dockerImages/{package}@{digest}",
        "uri": f"{location}-docker.pkg.dev/{project}/{repository}/{package}@{digest}",
        "tags": list(tags),
        "imageSizeBytes": str(size),
        "uploadTime": _TIME,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "buildTime": _TIME,
        "updateTime": _TIME,
    }


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.title() for word in rest)


@define
class ArtifactRegistryStandIn:
    """One Artifact Registry repository behind the REST list call, on a loopback port.

    ``tokens`` are the access tokens accepted (``accept`` adds one, e.g. from the stand-in
    OAuth endpoint); a request without one of them answers 401 ``UNAUTHENTICATED``.
    """

    project: str
    location: str
    repository: str
    images: list[dict[str, Any]] = field(factory=list)
    tokens: set[str] = field(factory=set)
    faults: dict[int, list[Fault]] = field(factory=dict)
    requests: list[ListRequest] = field(factory=list)
    _site: LoopbackSite = field(factory=LoopbackSite, init=False)

    @property
    def endpoint(self) -> URL:
        """The API's base URL (the source's ``endpoint``)."""
        return URL(f"http://127.0.0.1:{self._site.port}")

    @property
    def path(self) -> str:
        """The list call's path."""
        return (
            f"/v1/projects/{self.project}/locations/{self.location}"
            f"/repositories/{self.repository}/dockerImages"
        )

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_get("/v1/{parent:.+}/dockerImages", self._list)
        await self._site.start(app)

    async def stop(self) -> None:
        """Stop listening."""
        await self._site.stop()

    def accept(self, token: str) -> None:
        """Accept ``token`` as a bearer token from now on."""
        self.tokens.add(token)

    def load(self, listing: Iterable[dict[str, Any]]) -> None:
        """Replace the images with a listing in the client library's snake_case shape (the
        reference's fixtures), written as the REST API writes it."""
        self.images = []
        for entry in listing:
            image = {_camel(k): v for k, v in entry.items()}
            if isinstance(image.get("imageSizeBytes"), int):
                image["imageSizeBytes"] = str(image["imageSizeBytes"])
            self.images.append(image)

    def serve_tags(self, package: str, tags: Mapping[str, str]) -> None:
        """Replace the images with those of ``package`` named by ``tags`` (tag -> digest),
        one image per digest with all its tags, in first-seen order."""
        by_digest: dict[str, list[str]] = {}
        for tag, digest in tags.items():
            by_digest.setdefault(digest, []).append(tag)
        parent = (self.project, self.location, self.repository)
        self.images = [rest_image(*parent, package, d, ts) for d, ts in by_digest.items()]

    def push(self, package: str, digest: str, tags: Sequence[str]) -> None:
        """Add an image (or more tags to it); the tags leave whichever image had them."""
        self.untag(*tags)
        for image in self.images:
            if image["uri"].endswith(f"/{package}@{digest}"):
                image["tags"] = [*image["tags"], *tags]
                return
        args = (self.project, self.location, self.repository)
        self.images.append(rest_image(*args, package, digest, tags))

    def untag(self, *tags: str) -> None:
        """Remove the tags from every image (the images stay, untagged)."""
        for image in self.images:
            image["tags"] = [t for t in image.get("tags", []) if t not in tags]

    def fail_page(self, page: int, *faults: Fault) -> None:
        """Answer the ``page``-th request (0 is the first page) with these faults first."""
        self.faults.setdefault(page, []).extend(faults)

    async def _list(self, request: web.Request) -> web.Response:
        size_text = request.query.get("pageSize")
        token = request.query.get("pageToken") or None
        authorization = request.headers.get("Authorization")
        page_size = int(size_text) if size_text and size_text.isdigit() else None

        def answer(status: int, body: dict[str, Any], **headers: str) -> web.Response:
            self.requests.append(ListRequest(request.path, page_size, token, authorization, status))
            return web.json_response(body, status=status, headers=headers)

        bearer = (authorization or "").removeprefix("Bearer ")
        if (
            not authorization
            or not authorization.startswith("Bearer ")
            or bearer not in self.tokens
        ):
            return answer(401, _error(401, "Request had invalid authentication credentials."))
        if request.path != self.path:
            return answer(404, _error(404, f"Requested entity was not found: {request.path}"))
        try:
            start = _offset(token)
        except ValueError:
            return answer(400, _error(400, "Invalid page token."))
        size = min(page_size or _DEFAULT_PAGE_SIZE, _MAX_PAGE_SIZE)
        queued = self.faults.get(start // size if size else 0, [])
        if queued:
            fault = queued.pop(0)
            extra = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return answer(fault.status, _error(fault.status, "Injected failure."), **extra)
        chunk = self.images[start : start + size]
        body: dict[str, Any] = {"dockerImages": chunk} if chunk else {}
        if start + size < len(self.images):
            body["nextPageToken"] = _page_token(start + size)
        return answer(200, body)


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode("ascii")


def _offset(token: str | None) -> int:
    if token is None:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("bad token") from exc
    if kind != "offset" or not number.isdigit():
        raise ValueError("bad token")
    return int(number)


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}}
