"""The stand-in's HTTP side: the Kubernetes REST paths the bridge uses, list and watch."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from attrs import define, field
from kubernetes_asyncio.client import (
    V1ListMeta,
    V1Node,
    V1NodeList,
    V1ObjectMeta,
    V1Pod,
    V1PodList,
    V1PodStatus,
    V1Status,
)

from tests.support.kube.objects import Wire, expired, failure, forbidden, invalid, now, pod_problems
from tests.support.kube.rbac import BRIDGE_USER, Role
from tests.support.kube.store import Change, Selector, Store, Watcher

__all__ = ["ApiServer"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MODELS = {"Node": (V1Node, V1NodeList), "Pod": (V1Pod, V1PodList)}


@define
class ApiServer:
    """Serves ``/api/v1`` nodes and namespaced pods from ``store``; ``role`` None allows
    everything. Watches send a bookmark every ``bookmark_seconds`` to clients that ask."""

    store: Store
    wire: Wire
    token: str
    on_pod_created: Callable[[V1Pod], None]
    on_pod_deleted: Callable[[V1Pod], None]
    role: Role | None = None
    bookmark_seconds: float = 1.0
    default_watch_seconds: float = 1800.0
    tls: ssl.SSLContext | None = None
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[tuple[str, str]] = field(factory=list)
    _runner: web.AppRunner | None = field(default=None, init=False)
    _transports: set[asyncio.Transport] = field(factory=set, init=False)

    @property
    def listening(self) -> bool:
        """Whether the server answers now."""
        return self._runner is not None

    async def start(self) -> None:
        """Listen on ``host`` (the same port again after a stop)."""
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/api/v1/nodes", self._nodes)
        app.router.add_get("/api/v1/nodes/{name}", self._node)
        app.router.add_get("/api/v1/namespaces/{namespace}/pods", self._pods)
        app.router.add_post("/api/v1/namespaces/{namespace}/pods", self._create_pod)
        app.router.add_get("/api/v1/namespaces/{namespace}/pods/{name}", self._pod)
        app.router.add_delete("/api/v1/namespaces/{namespace}/pods/{name}", self._delete_pod)
        runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port, ssl_context=self.tls).start()
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        """Stop answering at once: every open connection is reset, watches included."""
        for transport in list(self._transports):
            transport.abort()
        self.store.end_watches()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        transport = request.transport
        if transport is not None:
            self._transports.add(transport)
        try:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return self._status(failure(401, "Unauthorized", "Unauthorized"))
            return await handler(request)
        finally:
            if transport is not None:
                self._transports.discard(transport)

    def _status(self, status: V1Status) -> web.Response:
        return web.json_response(self.wire.dump(status), status=status.code)

    def _denied(self, resource: str, verb: str, namespace: str | None) -> web.Response | None:
        if self.role is None or self.role.allows(resource, verb, namespace):
            return None
        return self._status(forbidden(BRIDGE_USER, verb, resource, namespace))

    async def _nodes(self, request: web.Request) -> web.StreamResponse:
        return await self._collection(request, "Node", None)

    async def _pods(self, request: web.Request) -> web.StreamResponse:
        return await self._collection(request, "Pod", request.match_info["namespace"])

    async def _node(self, request: web.Request) -> web.StreamResponse:
        return self._read(request, "Node", None)

    async def _pod(self, request: web.Request) -> web.StreamResponse:
        return self._read(request, "Pod", request.match_info["namespace"])

    def _read(self, request: web.Request, kind: str, namespace: str | None) -> web.Response:
        resource = kind.lower() + "s"
        name = request.match_info["name"]
        denied = self._denied(resource, "get", namespace)
        if denied is not None:
            return denied
        obj = self.store.get(kind, namespace, name)
        if obj is None:
            message = f'{resource} "{name}" not found'
            return self._status(failure(404, "NotFound", message, kind=resource, name=name))
        return web.json_response(self.wire.dump(obj))

    async def _collection(
        self, request: web.Request, kind: str, namespace: str | None
    ) -> web.StreamResponse:
        watch = request.query.get("watch") in ("1", "true", "True")
        denied = self._denied(kind.lower() + "s", "watch" if watch else "list", namespace)
        if denied is not None:
            return denied
        selector = Selector.parse(request.query.get("labelSelector"))
        if watch:
            return await self._watch(request, Watcher(kind, namespace, selector))
        _, list_model = _MODELS[kind]
        answer = list_model(
            api_version="v1",
            kind=f"{kind}List",
            metadata=V1ListMeta(resource_version=str(self.store.rv)),
            items=list(self.store.items(kind, namespace, selector)),
        )
        data = self.wire.dump(answer)
        for item in data["items"]:
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return web.json_response(data)

    async def _watch(self, request: web.Request, watcher: Watcher) -> web.StreamResponse:
        query = request.query
        seconds = float(query.get("timeoutSeconds") or self.default_watch_seconds)
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true", "True")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        backlog, error = self._backlog(watcher, query.get("resourceVersion") or "")
        self.store.watchers.append(watcher)
        try:
            if error is not None:
                await self._send(response, "ERROR", self.wire.dump(error))
                return response
            for change in backlog:
                await self._send(response, change.type, change.obj)
            await self._follow(response, watcher, seconds, bookmarks)
            await response.write_eof()
        except ConnectionError:
            pass
        finally:
            self.store.watchers.remove(watcher)
        return response

    def _backlog(self, watcher: Watcher, rv_text: str) -> tuple[list[Change], V1Status | None]:
        """What a new watch sends first: the changes after its version, or (no version)
        every current object as ADDED; a version older than the history is 410."""
        store = self.store
        if rv_text in ("", "0"):
            items = store.items(watcher.kind, watcher.namespace, watcher.selector)
            return [
                Change(store.rv, watcher.kind, watcher.namespace, "ADDED", self.wire.dump(o))
                for o in items
            ], None
        requested = int(rv_text)
        if requested < store.compacted:
            return [], expired(requested, store.compacted)
        return [c for c in store.since(requested) if watcher.wants(c)], None

    async def _follow(
        self, response: web.StreamResponse, watcher: Watcher, seconds: float, bookmarks: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            wait = min(remaining, self.bookmark_seconds) if bookmarks else remaining
            try:
                change = await asyncio.wait_for(watcher.queue.get(), wait)
            except TimeoutError:
                if bookmarks and loop.time() < deadline:
                    await self._send(response, "BOOKMARK", self._bookmark(watcher.kind))
                continue
            if change is None:
                return
            await self._send(response, change.type, change.obj)

    def _bookmark(self, kind: str) -> Any:
        model, _ = _MODELS[kind]
        meta = V1ObjectMeta(resource_version=str(self.store.rv))
        return self.wire.dump(model(api_version="v1", kind=kind, metadata=meta))

    @staticmethod
    async def _send(response: web.StreamResponse, event_type: str, obj: Any) -> None:
        line = json.dumps({"type": event_type, "object": obj}, separators=(",", ":"))
        await response.write(line.encode() + b"\n")

    async def _create_pod(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["namespace"]
        denied = self._denied("pods", "create", namespace)
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return self._status(failure(400, "BadRequest", "the request body is not JSON"))
        if not isinstance(body, dict) or body.get("kind", "Pod") != "Pod":
            return self._status(failure(400, "BadRequest", "the body is not a Pod"))
        if body.get("metadata", {}).get("namespace", namespace) != namespace:
            message = "the namespace of the provided object does not match the namespace sent"
            return self._status(failure(400, "BadRequest", message))
        name = str(body.get("metadata", {}).get("name") or "")
        problems = pod_problems(body)
        if problems:
            return self._status(invalid("Pod", name, problems))
        if self.store.get("Pod", namespace, name) is not None:
            message = f'pods "{name}" already exists'
            return self._status(failure(409, "AlreadyExists", message, kind="pods", name=name))
        pod: V1Pod = self.wire.load(body, "V1Pod")
        pod.metadata.namespace = namespace
        pod.metadata.uid = str(uuid.uuid4())
        pod.metadata.creation_timestamp = now()
        pod.status = V1PodStatus(phase="Pending", qos_class="Guaranteed")
        self.store.write("Pod", namespace, pod)
        self.on_pod_created(pod)
        return web.json_response(self.wire.dump(pod), status=201)

    async def _delete_pod(self, request: web.Request) -> web.StreamResponse:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        denied = self._denied("pods", "delete", namespace)
        if denied is not None:
            return denied
        pod = self.store.get("Pod", namespace, name)
        if pod is None:
            message = f'pods "{name}" not found'
            return self._status(failure(404, "NotFound", message, kind="pods", name=name))
        pod.metadata.deletion_timestamp = now()
        pod.metadata.deletion_grace_period_seconds = 0
        self.on_pod_deleted(pod)
        self.store.write("Pod", namespace, pod, delete=True)
        return web.json_response(self.wire.dump(pod))
