"""Hostile tag listings: a listing that would wipe the repository changes nothing.

A ``200`` with ``"tags": null``, an empty second page, or a listing that leaves out most
tags are served by the fault proxy in front of the real registry; the refresh fails or
keeps the tags it cannot confirm gone, so ``recommended`` and the menu survive.
"""

from __future__ import annotations

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.services.test_refresh import REPO, make_config, query, run
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RunningRegistry, client_for
from worker.adapters.ledger import EventLog
from worker.domain.events import RefreshCompleted, RefreshFailed

TAGS = ["recommended", "w_2077_44", "w_2077_43", "w_2077_42", "d_2077_10_30", "r27_0_0"]


async def current_tags(engine: AsyncEngine) -> list[str]:
    rows = await query(engine, "SELECT tag FROM ledger.tags WHERE removed_at IS NULL ORDER BY 1")
    return [r.tag for r in rows]


async def menu_tags(engine: AsyncEngine) -> list[str]:
    return [r.tag for r in await query(engine, "SELECT tag FROM dashboard.menu ORDER BY 1")]


async def seeded(
    registry: RunningRegistry,
    session: aiohttp.ClientSession,
    proxy: FaultProxy,
    engine: AsyncEngine,
    log: EventLog,
) -> tuple[list[str], list[str]]:
    await registry.pusher(session).push_tags(REPO, TAGS)
    client = client_for(registry, session, host=proxy.host)
    first = await run(client, engine, log, make_config(proxy.host), "r1")
    assert isinstance(first.summary, RefreshCompleted)
    return await current_tags(engine), await menu_tags(engine)


async def test_a_null_listing_fails_the_refresh_and_removes_nothing(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    engine: AsyncEngine,
    event_log: EventLog,
) -> None:
    tags, menu = await seeded(registry, registry_session, fault_proxy, engine, event_log)
    fault_proxy.answer(f"/v2/{REPO}/tags/list", {"name": REPO, "tags": None}, times=None)
    client = client_for(registry, registry_session, host=fault_proxy.host)

    report = await run(client, engine, event_log, make_config(fault_proxy.host), "r2")

    assert isinstance(report.summary, RefreshFailed)
    assert "'tags' is null" in report.summary.reason
    assert await current_tags(engine) == tags
    assert "recommended" in tags
    assert await menu_tags(engine) == menu


async def test_an_empty_second_page_fails_the_refresh_and_removes_nothing(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    engine: AsyncEngine,
    event_log: EventLog,
) -> None:
    tags, menu = await seeded(registry, registry_session, fault_proxy, engine, event_log)
    fault_proxy.paginate(2)
    fault_proxy.answer(f"/v2/{REPO}/tags/list", {"name": REPO, "tags": []}, query="last=")
    client = client_for(registry, registry_session, host=fault_proxy.host)

    report = await run(client, engine, event_log, make_config(fault_proxy.host), "r2")

    assert isinstance(report.summary, RefreshFailed)
    assert "empty page follows the first" in report.summary.reason
    assert fault_proxy.count("GET", "last=", fault="answer") == 1
    assert await current_tags(engine) == tags
    assert await menu_tags(engine) == menu


async def test_a_listing_leaving_out_most_tags_removes_only_confirmed_ones(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    engine: AsyncEngine,
    event_log: EventLog,
) -> None:
    tags, menu = await seeded(registry, registry_session, fault_proxy, engine, event_log)
    # The registry still holds every tag, but the listing now names only one of them.
    fault_proxy.answer(f"/v2/{REPO}/tags/list", {"name": REPO, "tags": ["r27_0_0"]}, times=None)
    client = client_for(registry, registry_session, host=fault_proxy.host)
    config = make_config(fault_proxy.host, maxRemovalsUnconfirmed=2, resolveBudget=2)
    unlisted = "/manifests/(?!r27_0_0$)"
    heads_before = fault_proxy.count("HEAD", unlisted)

    report = await run(client, engine, event_log, config, "r2")

    summary = report.summary
    assert isinstance(summary, RefreshCompleted)
    assert summary.removed == 0
    # Two of the five unlisted tags were HEADed (found: kept), the other three flagged.
    assert len(summary.flagged_tags) == 3
    assert set(summary.flagged_tags) < set(TAGS) - {"r27_0_0"}
    assert await current_tags(engine) == tags
    assert await menu_tags(engine) == menu
    assert fault_proxy.count("HEAD", unlisted) - heads_before == 2


async def test_an_unlisted_tag_is_removed_when_its_own_head_answers_404(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    engine: AsyncEngine,
    event_log: EventLog,
) -> None:
    tags, _ = await seeded(registry, registry_session, fault_proxy, engine, event_log)
    listed = [t for t in TAGS if t != "w_2077_42"]
    fault_proxy.answer(f"/v2/{REPO}/tags/list", {"name": REPO, "tags": listed}, times=None)
    fault_proxy.respond(f"/v2/{REPO}/manifests/w_2077_42$", 404, times=None)
    client = client_for(registry, registry_session, host=fault_proxy.host)

    report = await run(client, engine, event_log, make_config(fault_proxy.host), "r2")

    assert isinstance(report.summary, RefreshCompleted)
    assert report.summary.removed == 1
    assert report.summary.flagged_tags == ()
    assert await current_tags(engine) == sorted(set(tags) - {"w_2077_42"})
