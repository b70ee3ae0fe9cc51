"""The spawner API served from the views: the reference's own fixtures, reproduced over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import conformance as c
from tests.support.database import url_for
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RunningRegistry
from tests.support.spawner import Fixture, refresh, serving, spawner_config
from worker import converter as wire
from worker.adapters.ledger.eventlog import EventLog
from worker.adapters.ledger.stores.spawner import SpawnerStore
from worker.domain.events import NodeGone
from worker.services.evaluate import evaluate
from worker.services.spawner import SpawnerCatalog

T1 = datetime(2077, 11, 2, tzinfo=UTC)
CASES = [
    # config, registry, nodes, path, expected
    ("standard", "docker", "standard", "images", "controller/images/standard.json"),
    ("standard", "docker", "standard", "prepulls", "controller/prepuller/prepulls.json"),
    ("cycle", "docker-cycle", "cycle", "images", "controller/images/cycle.json"),
    ("prepuller", "docker", "prepuller", "prepulls", "controller/prepuller/status.json"),
]


async def get_json(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(("config_name", "registry_name", "nodes", "path", "expected"), CASES)
async def test_conformance_over_http(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    event_log: EventLog,
    database_url: str,
    config_name: str,
    registry_name: str,
    nodes: str,
    path: str,
    expected: str,
) -> None:
    """The reference's fixtures, fed through a real registry, refresh and node fold.

    ``resolveBudget: 0`` and the refused alias HEADs make our refresh learn exactly the
    digests the reference's Docker source knows (the prepull set's; difference 8 would
    resolve the rest). The fixtures' fake digests become the digests of the images pushed.
    """
    fixture = Fixture(fault_proxy.host)
    await fixture.push(registry, registry_session, registry_name)
    config = spawner_config(config_name, fault_proxy.host, resolveBudget=0)
    refused = fixture.refuse_beyond_reference(fault_proxy, config, registry_name)
    report = await refresh(config, database_url)
    assert report.succeeded
    assert set(getattr(report.summary, "flagged_tags", ())) == set(refused)
    await fixture.report_nodes(event_log, config, nodes)

    async with serving(config, database_url) as base:
        status, body = await get_json(f"{base}/spawner/v1/{path}")

    assert status == 200
    document = c.read_json(expected)
    if path == "images":
        document = c.without_nulls(document)  # the reference omits null fields (7.2)
    assert body == fixture.translate(document)


async def test_difference_8_every_digest_known(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    event_log: EventLog,
    database_url: str,
) -> None:
    """With the alias HEADs answered, the unknown tags resolve (difference 8), and the
    served document equals the pure evaluation of the same tags and nodes."""
    fixture = Fixture(registry.host)
    await fixture.push(registry, registry_session, "docker")
    config = spawner_config("standard", registry.host)
    assert (await refresh(config, database_url)).succeeded
    await fixture.report_nodes(event_log, config, "standard")

    async with serving(config, database_url) as base:
        status, body = await get_json(f"{base}/spawner/v1/images")

    assert status == 200
    latest = next(i for i in body["all"] if i["tag"] == "latest_weekly")
    assert latest["name"] == "Latest Weekly (Weekly 2077_43)"
    assert latest["digest"] == fixture.digests["sha256:5678"]
    assert body["recommended"]["aliases"] == ["latest_weekly", "w_2077_43"]
    nodes = wire.nodes_from_file(fixture.translate(c.read_json("controller/nodes/standard.json")))
    pure = evaluate(config, fixture.entries("docker"), nodes, "all").view
    assert body == wire.spawner_images_json(pure.spawner_images())


async def test_the_view_is_rebuilt_only_when_the_log_grows(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    engine: AsyncEngine,
    event_log: EventLog,
    database_url: str,
) -> None:
    fixture = Fixture(registry.host)
    await fixture.push(registry, registry_session, "docker")
    config = spawner_config("standard", registry.host)
    assert (await refresh(config, database_url)).succeeded
    await fixture.report_nodes(event_log, config, "standard")
    views = SpawnerCatalog(SpawnerStore(engine), config)

    first = await views.current()
    assert await views.current() is first
    assert [n.name for n in first.view.nodes] == ["node1", "node2"]

    await event_log.append([NodeGone(node="node2", occurred_at=T1)])
    second = await views.current()
    assert second.position > first.position
    assert [n.name for n in second.view.nodes] == ["node1"]
    # node2 lacked the daily: with it gone, the daily is prepulled everywhere that counts.
    daily = second.view.collection.image_for_tag("d_2077_10_23")
    assert daily is not None
    assert second.view.is_prepulled(daily)


async def test_database_unavailable_is_503_with_a_json_body(registry: RunningRegistry) -> None:
    config = spawner_config("standard", registry.host)
    async with serving(config, url_for("il_no_such_database")) as base:
        for path in ("images", "prepulls", "resolve?tag=w_2077_43"):
            status, body = await get_json(f"{base}/spawner/v1/{path}")
            assert status == 503, path
            assert body["detail"][0]["type"] == "database_unavailable"
            assert "il_no_such_database" in body["detail"][0]["msg"]
