"""The policy in force is recorded by refreshes: once, when it changes, with the config's hash,
so that ``imageledger explain`` names the rule that makes an image a target or not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.consumer.test_worker import make_config as worker_config
from tests.integration.consumer.test_worker import running_worker
from tests.integration.services.test_refresh import REPO, events_of, make_config, run
from tests.support.rabbit import wait_until
from tests.support.registry import RunningRegistry, client_for
from worker.adapters.broker import BrokerSettings
from worker.adapters.ledger import EventLog, ExplainStore
from worker.converter import parse_config
from worker.domain.events import PolicyConfigured
from worker.domain.explain import ImageQuery
from worker.services.explain import explain_image
from worker.services.prepull import prepull_settings

TAGS = ["w_2077_44", "w_2077_43", "w_2077_42", "r27_0_0"]


async def policies(log: EventLog) -> list[PolicyConfigured]:
    return [e for e in await events_of(log) if isinstance(e, PolicyConfigured)]


async def test_refreshes_record_the_policy_once_per_change_with_its_hash(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    engine: AsyncEngine,
    event_log: EventLog,
) -> None:
    await registry.pusher(registry_session).push_tags(REPO, TAGS)
    client = client_for(registry, registry_session)
    config = make_config(registry.host, numWeeklies=2)

    await run(client, engine, event_log, config, "r1")
    await run(client, engine, event_log, config, "r2")
    (first,) = await policies(event_log)
    assert first.prepull == config.images.policy()
    assert first.config_hash.startswith("sha256:")

    changed = make_config(registry.host, numWeeklies=1)
    await run(client, engine, event_log, changed, "r3")
    await run(client, engine, event_log, changed, "r4")
    second = (await policies(event_log))[1:]
    assert [p.prepull.num_weeklies for p in second] == [1]
    assert second[0].config_hash not in ("", first.config_hash)


async def test_explain_names_the_policy_rule_after_a_refresh(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    engine: AsyncEngine,
    event_log: EventLog,
) -> None:
    await registry.pusher(registry_session).push_tags(REPO, TAGS)
    config = make_config(registry.host, numWeeklies=1)
    await run(client_for(registry, registry_session), engine, event_log, config, "r1")

    async def explained(tag: str) -> Any:
        query = ImageQuery(tag=tag)
        now = datetime(2078, 1, 1, tzinfo=UTC)
        settings = prepull_settings(config)
        return await explain_image(ExplainStore(engine), query, "node-a", now, settings)

    older = await explained("w_2077_43")
    texts = [f.text for f in older.findings]
    assert not older.target
    assert not any("no prepull policy recorded" in t for t in texts)
    assert any("only the newest 1" in t for t in texts), texts
    assert (await explained("w_2077_44")).target


async def test_a_worker_starting_with_a_changed_configuration_records_it_once(
    registry: RunningRegistry,
    database_url: str,
    engine: AsyncEngine,
    event_log: EventLog,
    broker_settings: BrokerSettings,
) -> None:
    config = worker_config(registry.host)
    source = {"type": "docker", "registry": registry.host, "repository": REPO, "insecure": True}
    changed = parse_config(
        {"images": {"source": source, "numDailies": 1}, "lab": {"nodeSelector": {"pool": "lab"}}}
    )

    async def recorded(count: int) -> bool:
        return len(await policies(event_log)) == count

    for _ in range(2):
        async with running_worker(config, broker_settings, database_url):
            await wait_until(lambda: recorded(1), what="the policy recorded at start")
    async with running_worker(changed, broker_settings, database_url):
        await wait_until(lambda: recorded(2), what="the changed policy recorded at start")
    assert [dict(p.node_selector) for p in await policies(event_log)] == [{}, {"pool": "lab"}]
