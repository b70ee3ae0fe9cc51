"""The spawner documents served from the stored projections equal the domain's evaluation
of the same tags and nodes (``SpawnerDocuments`` against ``SpawnerCatalog``), per log
position, over a real registry, refresh and node fold."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.registry import RunningRegistry
from tests.support.spawner import Fixture, refresh, spawner_config
from worker import converter as wire
from worker.adapters.ledger.eventlog import EventLog
from worker.adapters.ledger.stores.spawner import SpawnerStore
from worker.config import Config
from worker.domain.events import NodeGone
from worker.services.spawner import SpawnerCatalog, SpawnerDocuments

T1 = datetime(2077, 11, 2, tzinfo=UTC)
CASES = [
    # config, registry, nodes, policy overrides
    ("standard", "docker", "standard", {}),
    ("cycle", "docker-cycle", "cycle", {}),
    ("prepuller", "docker", "prepuller", {}),
    # the recommended tag a typed image (not an alias), or naming one architecture (never
    # a prepull candidate), or absent from the repository
    ("standard", "docker", "standard", {"recommendedTag": "d_2077_10_23"}),
    ("standard", "docker", "standard", {"recommendedTag": "w_2077_44-amd64"}),
    ("standard", "docker", "standard", {"recommendedTag": "nowhere"}),
]


def documents(config: Config, served: Any) -> dict[str, Any]:
    """Both documents of a view (the evaluated catalog or the stored one)."""
    prepulls = wire.prepuller_status_json(
        config.images, served.prepuller_images(), served.node_statuses()
    )
    return {"images": wire.spawner_images_json(served.spawner_images()), "prepulls": prepulls}


async def seed(
    registry: RunningRegistry,
    session: aiohttp.ClientSession,
    log: EventLog,
    url: str,
    case: tuple[str, str, str, dict[str, Any]],
) -> Config:
    """A conformance case's tags pushed and refreshed, its nodes reported; its config."""
    config_name, registry_name, nodes, policy = case
    fixture = Fixture(registry.host)
    await fixture.push(registry, session, registry_name)
    config = spawner_config(config_name, registry.host, **policy)
    assert (await refresh(config, url)).succeeded
    assert await fixture.report_nodes(log, config, nodes)
    return config


async def evaluated(store: SpawnerStore, config: Config) -> dict[str, Any]:
    """The documents of the domain's evaluation of the current tags and nodes."""
    return documents(config, (await SpawnerCatalog(store, config).current()).view)


@pytest.mark.parametrize(("config_name", "registry_name", "nodes", "policy"), CASES)
async def test_served_equals_evaluated(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    engine: AsyncEngine,
    event_log: EventLog,
    database_url: str,
    config_name: str,
    registry_name: str,
    nodes: str,
    policy: dict[str, Any],
) -> None:
    case = (config_name, registry_name, nodes, policy)
    config = await seed(registry, registry_session, event_log, database_url, case)
    store = SpawnerStore(engine)
    served = SpawnerDocuments(store, config)

    first = await served.current()
    assert first.images, "the refresh stored its catalog"
    assert documents(config, first) == await evaluated(store, config)
    assert await served.current() is first  # nothing appended: the cached rows

    gone = sorted(n.name for n in first.nodes)[-1]
    await event_log.append([NodeGone(node=gone, occurred_at=T1)])
    second = await served.current()
    assert second.position > first.position
    assert gone not in [n.name for n in second.nodes]
    assert documents(config, second) == await evaluated(store, config)


async def test_a_changed_policy_is_served_at_the_next_refresh(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    engine: AsyncEngine,
    event_log: EventLog,
    database_url: str,
) -> None:
    """The tags stay as they were; a refresh under another policy stores its catalog."""
    before = await seed(registry, registry_session, event_log, database_url, CASES[0])
    store = SpawnerStore(engine)
    first = await SpawnerDocuments(store, before).current()

    after = spawner_config("standard", registry.host, numWeeklies=0, numDailies=0)
    assert (await refresh(after, database_url)).succeeded
    second = await SpawnerDocuments(store, after).current()

    assert documents(after, second) != documents(before, first)
    assert documents(after, second) == await evaluated(store, after)
