"""The policy in force is recorded by refreshes: once, when it changes, with the config's hash,
so that ``imageledger explain`` names the rule that makes an image a target or not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.test_refresh import REPO, events_of, make_config, run
from tests.support.registry import RunningRegistry, client_for
from worker.adapters.ledger import EventLog, ExplainStore
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
