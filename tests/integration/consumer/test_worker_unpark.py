"""Auto-unpark through the worker: a parked pair is tried again once its node's labels change."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import aiohttp
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.consumer.test_worker import REPO, T0, rows, running_worker
from tests.support.launcher import launcher
from tests.support.rabbit import publish_raw, wait_until
from tests.support.registry import RunningRegistry
from worker.adapters.broker.connection import BrokerSettings
from worker.config import Config
from worker.converter import parse_config


def node_a(labels: dict[str, str], minutes: int) -> bytes:
    at = T0 + timedelta(minutes=minutes)
    return json.dumps({"node": "node-a", "observed_at": at.isoformat(), "labels": labels}).encode()


async def pair_state(engine: AsyncEngine, digest: str) -> tuple[str | None, bool]:
    found = await rows(
        engine,
        "SELECT prepull_state, coalesce(present, false) AS present FROM ledger.node_images"
        f" WHERE node = 'node-a' AND digest = '{digest}'",
    )
    return (found[0].prepull_state, found[0].present) if found else (None, False)


def parking_config(registry: str, *, max_attempts: int, max_backoff: float) -> Config:
    """The weekly and recommended only, failed pairs parked after ``max_attempts``, with
    short back-off and planning ticks."""
    source = {"type": "docker", "registry": registry, "repository": REPO, "insecure": True}
    prepull = {"maxAttempts": max_attempts, "backoff": 0.1, "maxBackoff": max_backoff}
    return parse_config(
        {
            "images": {"source": source, "numDailies": 0},
            "prepull": {**prepull, "planInterval": 0.2},
        }
    )


async def test_a_label_change_unparks_and_the_prepull_is_tried_again(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    weekly = await registry.pusher(registry_session).push_image(
        REPO, ["w_2077_43", "recommended"], variant="w43"
    )
    config = parking_config(registry.host, max_attempts=1, max_backoff=1)
    exchange = broker_settings.prefix
    async with (
        running_worker(config, broker_settings, database_url),
        launcher(rabbit_connection, exchange, {("node-a", weekly)}) as stand_in,
    ):
        labels = {"kubernetes.io/hostname": "node-a"}
        await publish_raw(rabbit_connection, exchange, "node.inventory", node_a(labels, 0))
        await publish_raw(rabbit_connection, exchange, "refresh.request", b"{}", message_id="r1")

        async def parked() -> bool:
            return await pair_state(engine, weekly) == ("parked", False)

        await wait_until(parked, within=20, what="the failed pair parked")
        await asyncio.sleep(1)  # planning ticks: a parked pair gets no request
        assert len(stand_in.requests) == 1

        moved = {**labels, "topology.kubernetes.io/zone": "b"}
        await publish_raw(rabbit_connection, exchange, "node.inventory", node_a(moved, 1))

        async def present() -> bool:
            return (await pair_state(engine, weekly))[1]

        await wait_until(present, within=20, what="the unparked pair pulled")
    assert [(r.node, r.digest, r.attempt) for _, r in stand_in.requests] == [
        ("node-a", weekly, 1),
        ("node-a", weekly, 1),  # failures reset by the unpark
    ]
    unparked = await rows(engine, "SELECT data FROM ledger.events WHERE type = 'prepull.unparked'")
    assert len(unparked) == 1
    data = unparked[0].data if isinstance(unparked[0].data, dict) else json.loads(unparked[0].data)
    assert data["reason"] == "node labels changed"
    assert data["digest"] == weekly
