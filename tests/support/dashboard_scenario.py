"""A ledger filled by real traffic for the dashboard's queries: the CNCF registry (behind a
fault proxy), the worker in-process on RabbitMQ, and a stand-in pod launcher.

Repository ``lsstsqre/sciplat-lab``: ``w_2077_43`` + ``recommended`` (digest ``weekly``),
``w_2077_42`` (``older``), ``d_2077_10_23`` (``daily``); policy 2 weeklies, 1 daily, no
release; a prepull pair parks after 2 consecutive failures. Nodes: ``node-a`` (eligible,
already holds ``older``), ``node-b`` (eligible, empty), ``node-c`` (tainted NoSchedule). The
launcher fails the first prepull of the weekly on ``node-a`` and every prepull of the daily
on ``node-b`` (which parks). Refresh 1 finds the three images; then ``w_2077_44`` is pushed
and ``recommended`` moved to it, refresh 2 sees the move and ``w_2077_42`` leave the
prepull set; refresh 3 fails (the registry answers 503 to ``tags/list``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
from aio_pika.abc import AbstractRobustConnection
from attrs import frozen
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.consumer.test_worker import REPO, inventory, rows, running_worker
from tests.support.faultproxy import FaultProxy
from tests.support.launcher import Launcher, launcher
from tests.support.rabbit import publish_raw, wait_until
from tests.support.registry import RunningRegistry
from worker.adapters.broker import BrokerSettings
from worker.config import Config
from worker.converter import parse_config

__all__ = ["REPO", "Traffic", "run_scenario"]

TAINT = {"key": "maintenance", "effect": "NoSchedule"}


@frozen
class Traffic:
    """What the scenario did: the digests, when it began and ended, the launcher's log."""

    weekly: str
    older: str
    daily: str
    newest: str
    began: datetime
    ended: datetime
    prepull_requests: int


def make_config(registry: str) -> Config:
    """The worker's configuration for the scenario."""
    source = {"type": "docker", "registry": registry, "repository": REPO, "insecure": True}
    return parse_config(
        {
            "images": {"source": source, "numWeeklies": 2, "numDailies": 1, "numReleases": 0},
            "prepull": {"backoff": 0.2, "maxBackoff": 0.5, "planInterval": 0.2, "maxAttempts": 2},
        }
    )


async def _count(engine: AsyncEngine, sql: str) -> int:
    return int((await rows(engine, sql))[0][0] or 0)


async def _refresh(connection: AbstractRobustConnection, exchange: str, name: str) -> None:
    await publish_raw(connection, exchange, "refresh.request", b"{}", message_id=name)


async def _first_round(
    engine: AsyncEngine, connection: AbstractRobustConnection, exchange: str, older: str
) -> None:
    """Inventories of the three nodes, refresh 1, prepulls until the daily parks on node-b."""
    now = datetime.now(tz=UTC)
    for name, held, taints in [("node-a", [older], []), ("node-b", [], []),
                               ("node-c", [], [TAINT])]:  # fmt: skip
        body = inventory(name, held, taints=taints, at=now)
        await publish_raw(connection, exchange, "node.inventory", body, message_id=name)
    await wait_until(lambda: _nodes(engine), within=15, what="3 nodes")
    await _refresh(connection, exchange, "refresh-1")
    await wait_until(lambda: _parked_only(engine), within=30, what="the first round")


async def _nodes(engine: AsyncEngine) -> bool:
    return await _count(engine, "SELECT count(*) FROM dashboard.nodes") == 3


async def _parked_only(engine: AsyncEngine) -> bool:
    """Every pair to pull is present, except the one parked pair."""
    waiting = "SELECT count(*) FROM dashboard.prepull_queue WHERE status <> 'parked'"
    parked = "SELECT count(*) FROM dashboard.prepull_queue WHERE status = 'parked'"
    return await _count(engine, waiting) == 0 and await _count(engine, parked) == 1


async def _failed_refresh(engine: AsyncEngine) -> bool:
    failed = "SELECT count(*) FROM dashboard.refreshes WHERE status = 'failed'"
    return await _count(engine, failed) == 1


async def run_scenario(
    registry: RunningRegistry,
    session: aiohttp.ClientSession,
    proxy: FaultProxy,
    database_url: str,
    engine: AsyncEngine,
    settings: BrokerSettings,
    connection: AbstractRobustConnection,
) -> Traffic:
    """Run the whole scenario; returns when the ledger holds all of it."""
    began = datetime.now(tz=UTC)
    pusher = registry.pusher(session)
    weekly = await pusher.push_image(REPO, ["w_2077_43", "recommended"], variant="w43")
    older = await pusher.push_image(REPO, ["w_2077_42"], variant="w42")
    daily = await pusher.push_image(REPO, ["d_2077_10_23"], variant="d", kind="docker")
    exchange = settings.prefix
    async with (
        running_worker(make_config(proxy.host), settings, database_url),
        launcher(connection, exchange, {("node-a", weekly)},
                 frozenset({("node-b", daily)})) as stand_in,
    ):  # fmt: skip
        await _first_round(engine, connection, exchange, older)
        newest = await pusher.push_image(REPO, ["w_2077_44"], variant="w44")
        await pusher.tag(REPO, "recommended", newest)
        await _refresh(connection, exchange, "refresh-2")
        present = f"SELECT count(*) FROM dashboard.node_images WHERE digest = '{newest}'"
        await wait_until(
            lambda: _count_is(engine, present, 2), within=30, what="w_2077_44 on both nodes"
        )
        proxy.respond(f"/v2/{REPO}/tags/list", 503, times=None)
        await _refresh(connection, exchange, "refresh-3")
        await wait_until(lambda: _failed_refresh(engine), within=60, what="a failed refresh")
        proxy.clear()
        requests = len(_requests(stand_in))
    return Traffic(weekly, older, daily, newest, began, datetime.now(tz=UTC), requests)


async def _count_is(engine: AsyncEngine, sql: str, expected: int) -> bool:
    return await _count(engine, sql) == expected


def _requests(stand_in: Launcher) -> list[str]:
    return [message_id for message_id, _ in stand_in.requests]
