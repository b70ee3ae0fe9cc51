"""The bridge process (``imageledger kube``): the node and completion reporters, the launcher
consuming ``prepull.requested``, and ``/livez``, ``/readyz`` and ``/metrics``.

A request is acknowledged only once its pod exists (created now or before). While the API
server is away or refuses (``KubeUnavailableError``, ``KubeForbiddenError``), the batch in
hand is held, unacknowledged and without counting an attempt, and tried again with back-off
(one warning per outage); RabbitMQ away holds it too. A request the launcher cannot handle
for another reason goes through the delay queue and, after ``queue.maxAttempts``, to the
dead-letter queue, as the worker's messages do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import structlog
from aiohttp import web

from worker.domain.errors import KubeUnavailableError, MessageRejected, TransientError
from worker.domain.messages import Delivery, PrepullRequestedMessage
from worker.factory import METRICS_CONTENT_TYPE, BridgeRuntime, connect_unless_stopped

__all__ = ["HELD", "Bridge", "serve_bridge"]

HELD = (KubeUnavailableError, TransientError)
"""Failures that hold a batch of requests (API server or broker away, a refusal) instead
of counting an attempt towards the dead-letter queue."""

log = structlog.get_logger("imageledger.kube")
_RUNTIME: web.AppKey[BridgeRuntime] = web.AppKey("bridge", BridgeRuntime)


class Bridge:
    """One bridge process's consumer and background tasks."""

    def __init__(self, runtime: BridgeRuntime) -> None:
        self._rt = runtime
        self._tasks: list[asyncio.Task[None]] = []

    async def handle_requests(self, deliveries: list[Delivery]) -> None:
        """Create the pod of each request, in order; returns once every pod exists."""
        for delivery in deliveries:
            request = delivery.message
            if not isinstance(request, PrepullRequestedMessage):
                raise MessageRejected(f"not a prepull request: {delivery.routing_key}")
            await self._rt.launcher.launch(request)

    async def start(self) -> None:
        """Connect, start the reporters and the request consumer."""
        broker = self._rt.broker
        await broker.connect()
        self._spawn(self._rt.nodes.run(), "node reporter")
        self._spawn(self._rt.completions.run(), "completion reporter")
        await broker.consume(
            PrepullRequestedMessage.ROUTING_KEY,
            self.handle_requests,
            transient=HELD,
            outage="Kubernetes API",
        )
        kube = self._rt.config.kube
        log.info("bridge started", exchange=broker.topology.exchange, namespace=kube.namespace)

    def _spawn(self, job: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(job, name=name))

    async def stop(self) -> None:
        """Finish the batch in hand (a held one goes back unacknowledged), stop the
        reporters; the runtime closes the broker."""
        await self._rt.broker.stop_consuming()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        log.info("bridge stopped")

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (SIGTERM), then stop gracefully; a reporter that
        fails (a bug: API and broker failures are retried) ends the run with its error."""
        if not await connect_unless_stopped(self._rt.broker.connect(), stop, log, "bridge"):
            return
        await self.start()
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait(
                {stopping, *self._tasks}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done - {stopping}:
                task.result()
        finally:
            stopping.cancel()
            await self.stop()


async def livez(request: web.Request) -> web.Response:
    """200 while the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 once nodes and pods are listed and the broker connection is up, else 503."""
    health = request.app[_RUNTIME].health()
    body = {
        "status": "ok" if health.ready else "unavailable",
        "kube": "ok" if health.kube else "not synced",
        "broker": "ok" if health.broker else "unreachable",
    }
    return web.json_response(body, status=200 if health.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
    response = web.Response(body=request.app[_RUNTIME].scrape())
    response.headers["Content-Type"] = METRICS_CONTENT_TYPE
    return response


@asynccontextmanager
async def serve_bridge(runtime: BridgeRuntime, host: str, port: int) -> AsyncIterator[int]:
    """Serve ``/livez``, ``/readyz`` and ``/metrics`` for the block; yields the bound port."""
    app = web.Application()
    app[_RUNTIME] = runtime
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = int(runner.addresses[0][1]) if runner.addresses else port
        log.info("http server listening", host=host, port=bound)
        yield bound
    finally:
        await runner.cleanup()
