"""The worker's HTTP side (aiohttp): ``/healthz``, ``/metrics`` and the spawner API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from aiohttp import web

from worker import converter as wire
from worker.adapters.ledger import LedgerError
from worker.adapters.metrics import CONTENT_TYPE
from worker.domain.errors import (
    InvalidDockerReferenceError,
    RegistryUnavailableError,
    UnknownImageError,
)
from worker.domain.spawner import ImageClass, ResolvedImage
from worker.factory import Runtime

__all__ = ["create_app", "serve"]

log = structlog.get_logger("imageledger.web")
_RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers and the broker connection is up, else 503."""
    rt = request.app[_RUNTIME]
    database = await rt.status.reachable()
    broker = rt.broker.connected
    healthy = database and broker
    body = {
        "status": "ok" if healthy else "unavailable",
        "database": "ok" if database else "unreachable",
        "broker": "ok" if broker else "unreachable",
    }
    return web.json_response(body, status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; the gauges are read from the database at scrape time."""
    rt = request.app[_RUNTIME]
    try:
        rt.metrics.set_state(await rt.relay.backlog(), await rt.status.prepull_counts())
    except LedgerError as exc:
        log.warning("metrics gauges not refreshed", error=str(exc))
    response = web.Response(body=rt.metrics.render())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


def _error(status: int, kind: str, message: str, loc: list[str] | None = None) -> web.Response:
    """An error in the reference's (FastAPI / Safir) shape: ``{"detail": [{loc, msg, type}]}``."""
    detail: dict[str, Any] = {"loc": loc} if loc else {}
    detail.update(msg=message, type=kind)
    return web.json_response({"detail": [detail]}, status=status)


def _unavailable(exc: LedgerError) -> web.Response:
    log.warning("spawner request failed: database unavailable", error=str(exc))
    return _error(503, "database_unavailable", str(exc))


async def spawner_images(request: web.Request) -> web.Response:
    """``GET /spawner/v1/images``: the reference's SpawnerImages (null fields omitted)."""
    app = request.app[_RUNTIME].app
    try:
        current = await app.views.current()
    except LedgerError as exc:
        return _unavailable(exc)
    return web.json_response(wire.spawner_images_json(current.view.spawner_images()))


async def spawner_prepulls(request: web.Request) -> web.Response:
    """``GET /spawner/v1/prepulls``: the reference's PrepullerStatus."""
    app = request.app[_RUNTIME].app
    try:
        current = await app.views.current()
    except LedgerError as exc:
        return _unavailable(exc)
    view = current.view
    body = wire.prepuller_status_json(
        app.config.images, view.prepuller_images(), view.node_statuses()
    )
    return web.json_response(body)


_CLASSES = ", ".join(f"'{c.value}'" for c in ImageClass)


async def _resolve(runtime: Runtime, name: str, value: str | ImageClass) -> ResolvedImage:
    resolver = runtime.app.resolver
    if isinstance(value, ImageClass):
        return await resolver.for_class(value)
    if name == "reference":
        return await resolver.for_reference(value)
    return await resolver.for_tag(value)


async def spawner_resolve(request: web.Request) -> web.Response:
    """``GET /spawner/v1/resolve?reference=`` (or ``tag=``, ``class=``): one image.

    422 ``invalid_docker_reference``, 400 ``unknown_image``, 502 ``registry_error``, 503
    when the database is unavailable.
    """
    given = [k for k in ("reference", "tag", "class") if k in request.query]
    if len(given) != 1:
        message = "exactly one of reference, tag or class is required"
        return _error(422, "invalid_query", message, ["query"])
    name = given[0]
    loc = ["query", name]
    value: str | ImageClass = request.query[name]
    if name == "class":
        try:
            value = ImageClass(value)
        except ValueError:
            return _error(422, "enum", f"Input should be {_CLASSES}", loc)
    try:
        image = await _resolve(request.app[_RUNTIME], name, value)
    except InvalidDockerReferenceError as exc:
        return _error(422, "invalid_docker_reference", str(exc), loc)
    except UnknownImageError as exc:
        return _error(400, "unknown_image", str(exc), loc)
    except RegistryUnavailableError as exc:
        return _error(502, "registry_error", str(exc))
    except LedgerError as exc:
        return _unavailable(exc)
    return web.json_response(wire.resolved_image_json(image))


def create_app(runtime: Runtime) -> web.Application:
    """The aiohttp application of one worker."""
    app = web.Application()
    app[_RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/spawner/v1/images", spawner_images)
    app.router.add_get("/spawner/v1/prepulls", spawner_prepulls)
    app.router.add_get("/spawner/v1/resolve", spawner_resolve)
    return app


@asynccontextmanager
async def serve(runtime: Runtime, host: str, port: int) -> AsyncIterator[int]:
    """Serve the application on ``host:port`` for the block; yields the bound port
    (useful with port 0)."""
    runner = web.AppRunner(create_app(runtime), access_log=None)
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
