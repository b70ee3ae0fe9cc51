"""The worker's HTTP side (aiohttp): the probes (``/livez``, ``/readyz`` and ``/healthz``),
``/metrics``, the spawner API and the status page (``worker.status_page``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from worker import converter as wire
from worker.domain.errors import ImageLedgerError, ResolveRateLimitedError
from worker.factory import METRICS_CONTENT_TYPE, Console, Runtime
from worker.services.resolve import ImageName
from worker.status_page import add_status_page, matches

__all__ = ["create_app", "serve"]

log = structlog.get_logger("imageledger.web")
_RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)


def _error(status: int, kind: str, message: str, loc: list[str] | None = None) -> web.Response:
    """An error in the reference's (FastAPI / Safir) shape: ``{"detail": [{loc, msg, type}]}``."""
    detail: dict[str, Any] = {"loc": loc} if loc else {}
    detail.update(msg=message, type=kind)
    return web.json_response({"detail": [detail]}, status=status)


def _failed(
    request: web.Request, exc: ImageLedgerError, loc: list[str] | None = None
) -> web.Response:
    """The error document of an ImageLedgerError: its class's status and code; an error of
    the client's input (4xx) names where the input was, when ``loc`` says."""
    status = exc.http_status
    if status >= 500:
        log.warning("request failed", path=request.path, code=exc.error_code, error=str(exc))
    response = _error(status, exc.error_code, str(exc), loc if status < 500 else None)
    if isinstance(exc, ResolveRateLimitedError):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every ImageLedgerError a route raises as its error document."""
    try:
        return await handler(request)
    except ImageLedgerError as exc:
        return _failed(request, exc)


OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
"""What answers without the bearer token: the probes and the metrics."""


def _status_page(path: str) -> bool:
    """The status page's routes, which check the same token themselves (answering a browser
    with a sign-in form rather than a bare 401)."""
    return path in ("/", "/signin") or path.startswith(("/images/", "/nodes/"))


def bearer_token(token: str) -> Middleware:
    """Every path but ``OPEN_PATHS`` and the status page's (the spawner API, and anything
    unknown) requires ``Authorization: Bearer <token>``, compared in constant time by the
    one check the status page uses too; else 401 with ``WWW-Authenticate: Bearer``."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or _status_page(request.path):
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and matches(given.strip(), token):
            return await handler(request)
        response = _error(401, "unauthorized", "a valid bearer token is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="imageledger"'
        return response

    return authenticate


async def livez(_: web.Request) -> web.Response:
    """Liveness: 200 whenever the process and its event loop answer. It never asks the
    database or the broker: a worker waits out their outages, it is not restarted for them."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 when the database answers, the broker connection is up and the schema
    is at the newest migration, else 503 (also served as ``/healthz``)."""
    health = await request.app[_RUNTIME].health()
    body = {
        "status": "ok" if health.healthy else "unavailable",
        "database": "ok" if health.database else "unreachable",
        "broker": "ok" if health.broker else "unreachable",
        "migrations": "ok"
        if health.migrations
        else ("not at head" if health.database else "unknown"),
    }
    return web.json_response(body, status=200 if health.healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; the gauges are read from the database at scrape time."""
    response = web.Response(body=await request.app[_RUNTIME].scrape())
    response.headers["Content-Type"] = METRICS_CONTENT_TYPE
    return response


async def spawner_images(request: web.Request) -> web.Response:
    """``GET /spawner/v1/images``: the reference's SpawnerImages (null fields omitted)."""
    served = await request.app[_RUNTIME].app.documents.current()
    return web.json_response(wire.spawner_images_json(served.spawner_images()))


async def spawner_prepulls(request: web.Request) -> web.Response:
    """``GET /spawner/v1/prepulls``: the reference's PrepullerStatus."""
    app = request.app[_RUNTIME].app
    served = await app.documents.current()
    images, nodes = served.prepuller_images(), served.node_statuses()
    return web.json_response(wire.prepuller_status_json(app.config.images, images, nodes))


_NAMES: tuple[ImageName, ...] = ("reference", "tag", "class")


async def spawner_resolve(request: web.Request) -> web.Response:
    """``GET /spawner/v1/resolve?reference=`` (or ``tag=``, ``class=``): one image.

    422 ``invalid_docker_reference`` (or ``enum`` for a class), 400 ``unknown_image``,
    502 ``registry_error``, 503 when the database is unavailable.
    """
    given = [name for name in _NAMES if name in request.query]
    if len(given) != 1:
        message = "exactly one of reference, tag or class is required"
        return _error(422, "invalid_query", message, ["query"])
    name = given[0]
    try:
        image = await request.app[_RUNTIME].app.resolver.resolve(name, request.query[name])
    except ImageLedgerError as exc:
        return _failed(request, exc, ["query", name])
    return web.json_response(wire.resolved_image_json(image))


def create_app(runtime: Runtime, token: str | None = None) -> web.Application:
    """The aiohttp application of one worker; with ``token``, the spawner API and the
    status page require it (the probes and ``/metrics`` never do)."""
    middlewares = [errors] if token is None else [bearer_token(token), errors]
    app = web.Application(middlewares=middlewares)
    app[_RUNTIME] = runtime
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/healthz", readyz)  # readiness, for compatibility
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/spawner/v1/images", spawner_images)
    app.router.add_get("/spawner/v1/prepulls", spawner_prepulls)
    app.router.add_get("/spawner/v1/resolve", spawner_resolve)
    add_status_page(app, Console(runtime), token)
    return app


@asynccontextmanager
async def serve(
    runtime: Runtime, host: str, port: int, token: str | None = None
) -> AsyncIterator[int]:
    """Serve the application on ``host:port`` for the block (the spawner API behind
    ``token`` when given); yields the bound port (useful with port 0)."""
    runner = web.AppRunner(create_app(runtime, token), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = port
        server = site._server
        if port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            bound = sockets[0].getsockname()[1] if sockets else port
        log.info("http server listening", host=host, port=bound)
        yield bound
    finally:
        await runner.cleanup()
