"""The worker's HTTP side (aiohttp): ``/healthz`` and ``/metrics``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from aiohttp import web

from worker.adapters.database import LedgerError
from worker.adapters.metrics import CONTENT_TYPE
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


def create_app(runtime: Runtime) -> web.Application:
    """The aiohttp application of one worker."""
    app = web.Application()
    app[_RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
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
