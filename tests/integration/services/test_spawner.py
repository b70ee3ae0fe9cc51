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
    fixture = Fixture(registry.host)
    await fixture.push(registry, registry_session, registry_name)
    config = spawner_config(config_name, registry.host, **policy)
    assert (await refresh(config, database_url)).succeeded
    assert await fixture.report_nodes(event_log, config, nodes)
    store = SpawnerStore(engine)
    served, evaluated = SpawnerDocuments(store, config), SpawnerCatalog(store, config)

    first = await served.current()
    assert first.images, "the refresh stored its catalog"
    assert documents(config, first) == documents(config, (await evaluated.current()).view)
    assert await served.current() is first  # nothing appended: the cached rows

    gone = sorted(n.name for n in first.nodes)[-1]
    await event_log.append([NodeGone(node=gone, occurred_at=T1)])
    second = await served.current()
    assert second.position > first.position
    assert gone not in [n.name for n in second.nodes]
    assert documents(config, second) == documents(config, (await evaluated.current()).view)


async def test_a_changed_policy_is_served_at_the_next_refresh(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    engine: AsyncEngine,
    event_log: EventLog,
    database_url: str,
) -> None:
    """The tags stay as they were; a refresh under another policy stores its catalog."""
    fixture = Fixture(registry.host)
    await fixture.push(registry, registry_session, "docker")
    before = spawner_config("standard", registry.host)
    assert (await refresh(before, database_url)).succeeded
    await fixture.report_nodes(event_log, before, "standard")
    store = SpawnerStore(engine)
    first = await SpawnerDocuments(store, before).current()

    after = spawner_config("standard", registry.host, numWeeklies=0, numDailies=0)
    assert (await refresh(after, database_url)).succeeded
    second = await SpawnerDocuments(store, after).current()

    assert documents(after, second) != documents(before, first)
    assert documents(after, second) == documents(
        after, (await SpawnerCatalog(store, after).current()).view
    )
