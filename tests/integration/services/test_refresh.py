"""The refresh end to end: the real registry, the real event log, the dashboard views."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.cli import run_cli
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RunningRegistry, client_for
from worker.adapters.broker.connection import Broker, BrokerSettings
from worker.adapters.ledger.eventlog import EventLog
from worker.adapters.ledger.stores.refresh import LedgerRefreshStore
from worker.adapters.registry import RegistryClient
from worker.adapters.registry.source import RegistryTagSource
from worker.config import Config
from worker.converter import parse_config
from worker.domain.events import (
    RefreshCompleted,
    RefreshFailed,
    TagDiscovered,
    TagMoved,
    TagRemoved,
    TagResolved,
)
from worker.domain.images import Repository
from worker.services.refresh import RefreshReport, refresh

REPO = "lsstsqre/sciplat-lab"
_ticks = itertools.count()


def clock() -> datetime:
    """A monotonically advancing clock so that every refresh has its own time."""
    return datetime(2077, 11, 1, tzinfo=UTC) + timedelta(seconds=next(_ticks))


def make_config(registry: str, **images: Any) -> Config:
    source = {"type": "docker", "registry": registry, "repository": REPO, "insecure": True}
    return parse_config({"images": {"source": source, **images}})


async def run(
    client: RegistryClient, engine: AsyncEngine, log: EventLog, config: Config, name: str
) -> RefreshReport:
    source = RegistryTagSource(client, config.images.repository)
    store = LedgerRefreshStore(engine, log, config.dropdown_menu)
    return await refresh(source, store, config, refresh_id=name, clock=clock)


async def events_of(log: EventLog) -> list[Any]:
    return [r.event for r in await log.read(0, 10_000)]


async def query(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(text(sql)))


async def test_first_refresh_discovers_tags_aliases_and_indexes(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    engine: AsyncEngine,
    event_log: EventLog,
) -> None:
    pusher = registry.pusher(registry_session)
    weekly = await pusher.push_image(REPO, ["w_2077_43", "recommended", "latest_weekly"])
    index = await pusher.push_index(REPO, ["w_2077_44"], ["amd64", "arm64"])
    await pusher.push_image(REPO, ["d_2077_10_23"], kind="docker", variant="daily")
    config = make_config(registry.host)
    client = client_for(registry, registry_session)

    report = await run(client, engine, event_log, config, "r1")

    assert report.succeeded
    summary = report.summary
    assert isinstance(summary, RefreshCompleted)
    assert (summary.tags_total, summary.discovered, summary.flagged_tags) == (5, 5, ())
    assert sum(r.count for r in summary.requests if r.method == "HEAD") == 5
    discovered = {
        e.tag: e.digest for e in await events_of(event_log) if isinstance(e, TagDiscovered)
    }
    assert discovered["recommended"] == weekly
    assert discovered["w_2077_44"] == index
    menu = await query(engine, "SELECT section, tag, display_name FROM dashboard.menu")
    # No nodes known yet: every image counts as prepulled (reference 4.6).
    assert [(r.section, r.tag) for r in menu if r.section == "radio"] == [
        ("radio", "recommended"),
        ("radio", "w_2077_44"),
        ("radio", "d_2077_10_23"),
    ]
    assert menu[0].display_name == "Recommended (Weekly 2077_43)"
    names = dict(await query(engine, "SELECT tag, display_name FROM ledger.images"))
    assert names["latest_weekly"] == "Latest Weekly (Weekly 2077_43)"


async def test_no_change_refresh_appends_one_summary(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    engine: AsyncEngine,
    event_log: EventLog,
) -> None:
    await registry.pusher(registry_session).push_tags(REPO, ["w_2077_43", "w_2077_42", "x"])
    config = make_config(registry.host)
    client = client_for(registry, registry_session)
    await run(client, engine, event_log, config, "r1")
    before = await event_log.head()

    report = await run(client, engine, event_log, config, "r2")

    assert await event_log.head() == before + 1
    assert report.appended == 1
    assert isinstance(report.summary, RefreshCompleted)
    assert report.summary.discovered == report.summary.moved == 0


async def test_move_and_removal_are_recorded(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    engine: AsyncEngine,
    event_log: EventLog,
) -> None:
    pusher = registry.pusher(registry_session)
    old = await pusher.push_image(REPO, ["w_2077_43", "recommended"], variant="a")
    doomed = await pusher.push_image(REPO, ["w_2077_42"], variant="b")
    config = make_config(registry.host)
    client = client_for(registry, registry_session)
    first_refresh = await run(client, engine, event_log, config, "r1")
    new = await pusher.push_image(REPO, ["w_2077_44"], variant="c")
    await pusher.tag(REPO, "recommended", new)
    await pusher.delete(REPO, doomed)

    await run(client, engine, event_log, config, "r2")

    later = [e for e in await events_of(event_log) if not isinstance(e, TagDiscovered)]
    moved = [e for e in later if isinstance(e, TagMoved)]
    assert [(e.tag, e.old_digest, e.new_digest) for e in moved] == [("recommended", old, new)]
    assert [e.tag for e in later if isinstance(e, TagRemoved)] == ["w_2077_42"]
    async with engine.connect() as conn:
        first = await conn.execute(
            text("SELECT digest FROM dashboard.tag_digest_at('recommended', :t)"),
            {"t": first_refresh.summary.occurred_at},
        )
        now = await conn.execute(
            text("SELECT digest FROM dashboard.tag_digest_at('recommended', :t)"),
            {"t": datetime(2078, 1, 1, tzinfo=UTC)},
        )
    assert first.scalar_one() == old
    assert now.scalar_one() == new


async def test_budget_converges_the_whole_repository(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    engine: AsyncEngine,
    event_log: EventLog,
) -> None:
    """DOMAIN.md difference 8: a few never-resolved tags per refresh until all are known."""
    pusher = registry.pusher(registry_session)
    old_weeklies = [f"w_2077_{n}" for n in range(30, 40)]
    await pusher.push_tags(REPO, old_weeklies)
    target = await pusher.push_image(REPO, ["w_2077_20", "latest_old"], variant="old")
    config = make_config(registry.host, resolveBudget=4, numWeeklies=1)
    client = client_for(registry, registry_session)

    for n in range(4):
        await run(client, engine, event_log, config, f"r{n}")

    unresolved = await query(
        engine, "SELECT tag FROM ledger.tags WHERE digest IS NULL AND removed_at IS NULL"
    )
    assert unresolved == []
    resolved = [e for e in await events_of(event_log) if isinstance(e, TagResolved)]
    # The first refresh HEADs 6 (1 candidate, 1 alias, budget 4); the other 6 resolve later.
    assert len(resolved) == 6
    names = dict(await query(engine, "SELECT tag, display_name FROM ledger.images"))
    assert names["latest_old"] == "Latest Old (Weekly 2077_20)"
    assert target


async def test_listing_failure_records_refresh_failed_and_keeps_state(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    engine: AsyncEngine,
    event_log: EventLog,
) -> None:
    await registry.pusher(registry_session).push_tags(REPO, ["w_2077_43"])
    config = make_config(fault_proxy.host)
    client = client_for(registry, registry_session, host=fault_proxy.host)
    await run(client, engine, event_log, config, "r1")
    fault_proxy.respond(f"/v2/{REPO}/tags/list", 503, times=None)

    report = await run(client, engine, event_log, config, "r2")

    assert not report.succeeded
    assert isinstance(report.summary, RefreshFailed)
    assert "503" in report.summary.reason
    tags = await query(engine, "SELECT tag, digest FROM ledger.tags WHERE removed_at IS NULL")
    assert [t.tag for t in tags] == ["w_2077_43"]
    assert tags[0].digest is not None


async def test_failing_heads_keep_last_digest_and_are_flagged(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    engine: AsyncEngine,
    event_log: EventLog,
) -> None:
    digests = await registry.pusher(registry_session).push_tags(REPO, ["w_2077_43", "w_2077_42"])
    config = make_config(fault_proxy.host)
    client = client_for(registry, registry_session, host=fault_proxy.host)
    await run(client, engine, event_log, config, "r1")
    fault_proxy.respond(f"/v2/{REPO}/manifests/w_2077_43", 503, times=None)

    report = await run(client, engine, event_log, config, "r2")

    assert isinstance(report.summary, RefreshCompleted)
    assert report.summary.flagged_tags == ("w_2077_43",)
    assert report.summary.retries > 0
    kept = await query(engine, "SELECT digest FROM ledger.tags WHERE tag = 'w_2077_43'")
    assert kept[0].digest == digests["w_2077_43"]


async def test_concurrent_refreshes_of_one_repository_are_serialized(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    engine: AsyncEngine,
    event_log: EventLog,
) -> None:
    await registry.pusher(registry_session).push_tags(REPO, [f"w_2077_{n}" for n in range(10, 20)])
    config = make_config(registry.host)
    client = client_for(registry, registry_session)

    reports = await asyncio.gather(
        *(run(client, engine, event_log, config, f"r{n}") for n in range(3))
    )

    discovered = [e for e in await events_of(event_log) if isinstance(e, TagDiscovered)]
    assert len(discovered) == 10
    # One refresh records the policy, the ten tags and its summary; the others a summary.
    assert sorted(r.appended for r in reports) == [1, 1, 12]
    assert Repository(registry.host, REPO) == reports[0].repository


async def test_refresh_now_command(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    database_url: str,
    tmp_path: Path,
) -> None:
    await registry.pusher(registry_session).push_image(REPO, ["w_2077_43", "recommended"])
    config = tmp_path / "config.yaml"
    config.write_text(
        f"images:\n  source: {{type: docker, registry: '{registry.host}', "
        f"repository: {REPO}, insecure: true}}\n"
    )
    env = {"IMAGELEDGER_CONFIG": str(config), "IMAGELEDGER_DATABASE_URL": database_url}

    code, out, err = await run_cli("refresh", "--now", env=env)
    assert code == 0, err
    assert "completed" in out
    assert "tags: 2  discovered: 2" in out
    assert err.splitlines()[-1].startswith("refresh: 2/2 digests (100%)")  # progress on stderr

    code, out, err = await run_cli("refresh", "--now", "--json", env=env)
    assert code == 0
    assert json.loads(out)["discovered"] == 0
    assert "digests" not in err  # never a progress report with --json

    code, out, _ = await run_cli("menu", env=env)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["section", "name", "prepulled", "reference"]
    assert lines[1].startswith("radio")
    assert "Recommended (Weekly 2077_43)" in lines[1]
    code, out, _ = await run_cli("status", "--json", env=env)
    assert code == 0
    status = json.loads(out)
    assert [row["tag"] for row in status] == ["w_2077_43"]
    assert status[0]["prepulled"] is True  # no eligible nodes yet: vacuously prepulled

    bad = {**env, "IMAGELEDGER_DATABASE_URL": database_url.rsplit("/", 1)[0] + "/no_such_db"}
    for command in (("refresh", "--now"), ("menu",), ("status",)):
        code, out, err = await run_cli(*command, env=bad)
        assert code == 1, command
        assert "Traceback" not in err
        assert err.startswith("imageledger: error: ")
        assert len(err.strip().splitlines()) == 1


async def test_refresh_command_publishes_a_request_under_the_workers_prefix(
    broker: Broker, broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    prefix = broker_settings.prefix
    args = ("refresh", "--amqp-url", broker_settings.url, "--prefix", prefix)
    code, out, err = await run_cli(*args, env={})
    assert code == 0, err
    message_id = out.strip().rsplit(" ", 1)[-1].rstrip(")")
    channel = await rabbit_connection.channel()
    queue = await channel.get_queue(f"{prefix}.refresh", ensure=False)
    async with asyncio.timeout(10), queue.iterator() as messages:
        async for message in messages:
            assert message.message_id == message_id
            assert json.loads(message.body)["reason"] == "imageledger refresh"
            await message.ack()
            break
