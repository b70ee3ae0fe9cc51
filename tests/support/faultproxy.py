"""A fault-injecting reverse proxy in front of a real registry, with GHCR-style pagination."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import Mapping
from typing import Literal

import aiohttp
from aiohttp import web
from attrs import define, field, frozen
from multidict import CIMultiDict
from yarl import URL

from tests.support.net import LoopbackSite

__all__ = ["Fault", "FaultProxy", "LinkStyle"]

LinkStyle = Literal["relative", "absolute", "loop", "other-host"]
FaultKind = Literal["respond", "answer", "delay", "drop", "strip-header"]

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "host",
        "upgrade",
    }
)
_TAGS_LIST = re.compile(r"^/v2/(?P<name>.+)/tags/list$")
OTHER_HOST = "http://other-registry.invalid:5000"


@define
class Fault:
    """One programmed fault: which requests it hits, what it does, how many times more."""

    kind: FaultKind
    path: re.Pattern[str]
    method: str | None = None
    times: int | None = 1
    status: int = 503
    headers: Mapping[str, str] = field(factory=dict)
    seconds: float = 0.0
    header: str = ""
    body: object = None
    query: re.Pattern[str] | None = None

    def matches(self, request: web.Request) -> bool:
        """Whether this fault applies to ``request`` and has uses left."""
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and request.method != self.method:
            return False
        if self.query is not None and self.query.search(request.query_string) is None:
            return False
        return self.path.search(request.path) is not None


@frozen
class Hit:
    """A request the proxy received, and what it did with it."""

    method: str
    path_qs: str
    fault: FaultKind | None


@define
class FaultProxy:
    """Forwards everything to ``upstream`` except what a programmed fault intercepts.

    Faults are tried in the order added; each applies ``times`` times (None: forever). With
    ``paginate``, ``tags/list`` answers are cut into pages with ``Link: rel="next"`` headers.
    """

    upstream: URL
    upstream_ssl: ssl.SSLContext | bool = True
    faults: list[Fault] = field(factory=list)
    hits: list[Hit] = field(factory=list)
    page_size: int | None = None
    link_style: LinkStyle = "relative"
    _site: LoopbackSite = field(factory=LoopbackSite, init=False)
    _session: aiohttp.ClientSession | None = field(default=None, init=False)

    @property
    def host(self) -> str:
        """``127.0.0.1:port``, to configure as the registry host of a client."""
        return f"127.0.0.1:{self._site.port}"

    @property
    def url(self) -> URL:
        """Base URL of the proxy (plain http)."""
        return URL(f"http://{self.host}")

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        await self._site.start(app, shutdown_timeout=0.2, cancel=True)

    async def stop(self) -> None:
        """Stop listening and close the upstream session."""
        await self._site.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def respond(
        self,
        path: str,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        times: int | None = 1,
        method: str | None = None,
    ) -> Fault:
        """Answer ``status`` (e.g. 429 with Retry-After, or 503) instead of forwarding."""
        fault = Fault("respond", re.compile(path), method, times, status, dict(headers or {}))
        return self._add(fault)

    def answer(
        self,
        path: str,
        body: object,
        *,
        query: str | None = None,
        times: int | None = 1,
        method: str | None = "GET",
    ) -> Fault:
        """Answer 200 with ``body`` as JSON and no ``Link`` header (a registry that lies);
        ``query`` narrows it to requests whose query string matches (e.g. ``last=``)."""
        pattern = None if query is None else re.compile(query)
        fault = Fault("answer", re.compile(path), method, times, 200, body=body, query=pattern)
        return self._add(fault)

    def delay(
        self, path: str, seconds: float, *, times: int | None = 1, method: str | None = None
    ) -> Fault:
        """Wait ``seconds`` before forwarding (a slow registry)."""
        return self._add(Fault("delay", re.compile(path), method, times, seconds=seconds))

    def drop(self, path: str, *, times: int | None = 1, method: str | None = None) -> Fault:
        """Close the connection without an answer."""
        return self._add(Fault("drop", re.compile(path), method, times))

    def strip_header(
        self, path: str, header: str, *, times: int | None = None, method: str | None = None
    ) -> Fault:
        """Forward, but remove ``header`` from the answer (e.g. Docker-Content-Digest)."""
        return self._add(Fault("strip-header", re.compile(path), method, times, header=header))

    def clear(self) -> None:
        """Remove every programmed fault (pagination stays as set)."""
        self.faults.clear()

    def _add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def paginate(self, page_size: int, link_style: LinkStyle = "relative") -> None:
        """Split ``tags/list`` into pages of ``page_size`` linked the way GHCR does."""
        self.page_size = page_size
        self.link_style = link_style

    def count(self, method: str | None = None, path: str = "", fault: str | None = None) -> int:
        """Requests received matching ``method``, a path regex and the fault applied."""
        pattern = re.compile(path)
        return sum(
            1
            for hit in self.hits
            if (method is None or hit.method == method)
            and pattern.search(hit.path_qs)
            and (fault is None or hit.fault == fault)
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fault = next((f for f in self.faults if f.matches(request)), None)
        self.hits.append(Hit(request.method, request.path_qs, fault.kind if fault else None))
        if fault is not None and fault.times is not None:
            fault.times -= 1
        if fault is not None and fault.kind == "respond":
            return web.json_response(
                {"errors": [{"code": "INJECTED", "message": f"injected {fault.status}"}]},
                status=fault.status,
                headers=dict(fault.headers),
            )
        if fault is not None and fault.kind == "answer":
            return web.json_response(fault.body)
        if fault is not None and fault.kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()  # never written: the transport is gone
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        match = _TAGS_LIST.match(request.path)
        if self.page_size is not None and match is not None and request.method == "GET":
            return await self._tag_page(request, match.group("name"))
        status, headers, body = await self._forward(request, request.path_qs)
        if fault is not None and fault.kind == "strip-header":
            headers.popall(fault.header, None)
        return web.Response(status=status, headers=headers, body=body)

    async def _forward(
        self, request: web.Request, path_qs: str
    ) -> tuple[int, CIMultiDict[str], bytes]:
        """Send the request upstream; return its status, end-to-end headers and body."""
        assert self._session is not None, "proxy not started"
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        data = await request.read() if request.can_read_body else None
        async with self._session.request(
            request.method,
            self.upstream.join(URL(path_qs, encoded=True)),
            headers=headers,
            data=data,
            ssl=self.upstream_ssl,
            allow_redirects=False,
        ) as upstream:
            body = await upstream.read()
            out = CIMultiDict(
                (k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
            )
            return upstream.status, out, body

    async def _tag_page(self, request: web.Request, name: str) -> web.Response:
        """One page of the upstream tag list, with a ``Link`` to the next if there is one.

        Pages are cut from the lexically sorted list, as paginating registries do (the
        distribution registry itself does not sort).
        """
        status, headers, body = await self._forward(request, f"/v2/{name}/tags/list")
        if status != 200:
            return web.Response(status=status, headers=headers, body=body)
        tags: list[str] = sorted(json.loads(body).get("tags") or [])
        assert self.page_size is not None
        size = min(int(request.query.get("n", self.page_size)), self.page_size)
        last = request.query.get("last")
        rest = tags if last is None else [tag for tag in tags if tag > last]
        page = rest[:size]
        if len(rest) > size:
            headers["Link"] = f'<{self._next_url(name, size, page[-1])}>; rel="next"'
        headers.popall("Content-Type", None)
        return web.json_response({"name": name, "tags": page}, headers=headers)

    def _next_url(self, name: str, size: int, last: str) -> str:
        relative = f"/v2/{name}/tags/list?n={size}&last={last}"
        if self.link_style == "absolute":
            return f"{self.url}{relative}"
        if self.link_style == "loop":
            return f"/v2/{name}/tags/list?n={size}"
        if self.link_style == "other-host":
            return f"{OTHER_HOST}{relative}"
        return relative
