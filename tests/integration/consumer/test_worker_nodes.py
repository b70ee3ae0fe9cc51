"""Node messages through the real worker: ``node.gone`` takes a node out of the status; an
empty kubelet list is recorded as the report it is."""

from __future__ import annotations

import json
from datetime import timedelta

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.consumer.test_worker import T0, inventory, make_config, rows, running_worker
from tests.support.rabbit import publish_raw, wait_until
from tests.support.registry import RunningRegistry
from worker.adapters.broker import BrokerSettings


def gone(node: str, at: object) -> bytes:
    return json.dumps({"node": node, "observed_at": str(at)}).encode()


async def test_a_deleted_node_leaves_the_status_and_comes_back_with_a_later_inventory(
    registry: RunningRegistry,
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    exchange = broker_settings.prefix

    async def counted() -> list[str]:
        sql = "SELECT node FROM dashboard.nodes WHERE counted ORDER BY node"
        return [r.node for r in await rows(engine, sql)]

    async with running_worker(make_config(registry.host), broker_settings, database_url):
        for node in ("node-a", "node-b"):
            await publish_raw(rabbit_connection, exchange, "node.inventory", inventory(node, []))

        async def both() -> bool:
            return await counted() == ["node-a", "node-b"]

        await wait_until(both, what="two counted nodes")
        deleted = gone("node-b", (T0 + timedelta(minutes=1)).isoformat())
        await publish_raw(rabbit_connection, exchange, "node.gone", deleted, message_id="gone-1")
        await publish_raw(rabbit_connection, exchange, "node.gone", deleted, message_id="gone-1")

        async def one() -> bool:
            return await counted() == ["node-a"]

        await wait_until(one, what="node-b gone from the status")
        back = inventory("node-b", [], at=T0 + timedelta(minutes=2))
        await publish_raw(rabbit_connection, exchange, "node.inventory", back)
        await wait_until(both, what="node-b back")
    events = await rows(
        engine, "SELECT type, causation FROM ledger.events WHERE type = 'node.gone'"
    )
    assert [(e.type, e.causation) for e in events] == [("node.gone", "gone-1")]


async def test_an_empty_kubelet_list_is_a_report_not_a_missing_one(
    registry: RunningRegistry,
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    exchange = broker_settings.prefix
    async with running_worker(make_config(registry.host), broker_settings, database_url):
        await publish_raw(rabbit_connection, exchange, "node.inventory", inventory("node-e", []))
        sql = "SELECT last_inventory_at, last_complete_at, image_count FROM dashboard.nodes"

        async def reported() -> bool:
            found = await rows(engine, sql)
            return bool(found) and found[0].last_inventory_at is not None

        await wait_until(reported, what="the empty list recorded")
    (node,) = await rows(engine, sql)
    assert (node.last_inventory_at, node.last_complete_at, node.image_count) == (T0, T0, 0)
