"""Liveness and readiness (issue 12, fault 5): ``/livez`` answers while the process and its
event loop do, whatever PostgreSQL does; ``/readyz`` (and ``/healthz``, kept for
compatibility) answers 200 only with the database reachable, the broker connected and the
schema at head."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.integration.consumer.test_worker_edges import make_config, running_worker
from tests.support.database import url_for
from worker.adapters.broker.connection import BrokerSettings
from worker.adapters.ledger import migrate
from worker.adapters.ledger.database import make_engine
from worker.web import serve

READY = {"status": "ok", "database": "ok", "broker": "ok", "migrations": "ok"}


async def probes(port: int) -> dict[str, tuple[int, Any]]:
    out: dict[str, tuple[int, Any]] = {}
    async with aiohttp.ClientSession() as http:
        for path in ("/livez", "/readyz", "/healthz"):
            async with http.get(f"http://127.0.0.1:{port}{path}") as response:
                out[path] = (response.status, await response.json())
    return out


async def test_all_up_is_live_and_ready(database_url: str, broker_settings: BrokerSettings) -> None:
    async with (
        running_worker(broker_settings, database_url) as runtime,
        serve(runtime, "127.0.0.1", 0) as port,
    ):
        answers = await probes(port)
    assert answers == {
        "/livez": (200, {"status": "ok"}),
        "/readyz": (200, READY),
        "/healthz": (200, READY),
    }


async def test_a_database_away_is_not_ready_but_still_live(
    broker_settings: BrokerSettings,
) -> None:
    async with (
        running_worker(broker_settings, url_for("il_probe_no_such_database")) as runtime,
        serve(runtime, "127.0.0.1", 0) as port,
    ):
        answers = await probes(port)
    away = {**READY, "status": "unavailable", "database": "unreachable", "migrations": "unknown"}
    assert answers == {
        "/livez": (200, {"status": "ok"}),
        "/readyz": (503, away),
        "/healthz": (503, away),
    }


async def test_a_schema_behind_the_workers_migrations_is_not_ready(
    empty_database_url: str, broker_settings: BrokerSettings
) -> None:
    engine = make_engine(empty_database_url)
    try:
        await migrate.upgrade(engine, migrate.revisions()[-2])
    finally:
        await engine.dispose()
    async with (
        running_worker(broker_settings, empty_database_url, make_config()) as runtime,
        serve(runtime, "127.0.0.1", 0) as port,
    ):
        answers = await probes(port)
    behind = {**READY, "status": "unavailable", "migrations": "not at head"}
    assert answers["/livez"] == (200, {"status": "ok"})
    assert answers["/readyz"] == (503, behind)
