"""Live refreshes of a Google source: the stand-in Artifact Registry, google-auth's real
token exchange with the stand-in OAuth endpoint, a real ledger.

The reference's Artifact Registry fixtures (``gar``, ``gar-cycle``) reproduced through the
production graph, not through ``evaluate``; then moves, removals and failures.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from attrs import evolve
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.services.test_refresh import clock, events_of, query
from tests.support import conformance as c
from tests.support.artifact_registry import Fault
from tests.support.google_fixtures import GoogleStandIns, google, google_config
from tests.support.registry import FAST_LIMITS
from tests.support.spawner import Fixture, refresh, report_node_data, serving
from worker import converter as wire
from worker.adapters.ledger import EventLog, LedgerRefreshStore, SpawnerStore
from worker.adapters.registry import (
    ArtifactRegistryLister,
    ArtifactRegistryTagSource,
    GoogleAccessTokens,
)
from worker.config import Config, GoogleSource
from worker.domain.events import RefreshCompleted, RefreshFailed, TagMoved, TagRemoved
from worker.domain.refresh import RemovalLimit
from worker.services.refresh import RefreshReport
from worker.services.refresh import refresh as run_refresh
from worker.services.spawner import SpawnerCatalog

__all__ = ["google"]

NOW = datetime(2077, 11, 1, tzinfo=UTC)
"""The time the reference's menus were computed at (as the offline conformance test)."""
LATER = NOW + timedelta(hours=1)


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def served_images(config: Config, url: str) -> Any:
    async with serving(config, url) as base:
        return await get_json(f"{base}/spawner/v1/images")


async def menu(engine: AsyncEngine, config: Config) -> Any:
    current = await SpawnerCatalog(SpawnerStore(engine), config).current()
    return wire.menu_json(current.view.menu_images(config.dropdown_menu, NOW))


async def test_gar_before_and_after_prepulls_through_a_live_refresh(
    google: GoogleStandIns, engine: AsyncEngine, event_log: EventLog, database_url: str
) -> None:
    config = google_config(c.config("gar"), google)
    google.load("gar", config)

    report = await refresh(config, database_url)

    assert report.succeeded, report
    assert len(google.oauth.grants) == 1
    await Fixture("").report_nodes(event_log, config, "empty")
    assert await served_images(config, database_url) == c.without_nulls(
        c.read_json("controller/images/gar-before.json")
    )
    assert await menu(engine, config) == c.read_json("controller/menu/gar-before.json")

    # The prepull pods succeed: both nodes now report the weeklies' digests.
    current = await SpawnerCatalog(SpawnerStore(engine), config).current()
    plan = current.view.prepull_plan()
    assert [(r.image.tag, r.node) for r in plan] == [
        ("w_2077_43", "node1"),
        ("w_2077_43", "node2"),
        ("w_2077_42", "node1"),
        ("w_2077_42", "node2"),
    ]
    pulled: dict[str, list[dict[str, Any]]] = {"node1": [], "node2": []}
    for request in plan:
        pulled[request.node].append({"names": [request.reference], "size_bytes": 123456})
    nodes = {node: {"images": images} for node, images in pulled.items()}
    await report_node_data(event_log, config, nodes, at=LATER, key="pulled")

    assert await served_images(config, database_url) == c.without_nulls(
        c.read_json("controller/images/gar-after.json")
    )
    assert await menu(engine, config) == c.read_json("controller/menu/gar-after.json")
    after = await SpawnerCatalog(SpawnerStore(engine), config).current()
    assert after.view.prepull_plan() == []


@pytest.mark.parametrize("output", ["images", "menu"])
async def test_gar_cycle_through_a_live_refresh(
    google: GoogleStandIns,
    engine: AsyncEngine,
    event_log: EventLog,
    database_url: str,
    output: str,
) -> None:
    config = google_config(c.config("gar-cycle"), google)
    google.load("gar-cycle", config)

    assert (await refresh(config, database_url)).succeeded
    await Fixture("").report_nodes(event_log, config, "gar-cycle")

    expected = c.read_json(f"controller/{output}/gar-cycle.json")
    if output == "images":
        assert await served_images(config, database_url) == c.without_nulls(expected)
    else:
        assert await menu(engine, config) == expected


async def run(
    stand_ins: GoogleStandIns,
    engine: AsyncEngine,
    log: EventLog,
    config: Config,
    name: str,
    **limits: int,
) -> RefreshReport:
    """One refresh of ``config``'s Google source with fast back-off and small pages."""
    source = config.images.source
    assert isinstance(source, GoogleSource)
    async with aiohttp.ClientSession() as session:
        lister = ArtifactRegistryLister.connect(
            session,
            source.endpoint,
            (source.project_id, source.location, source.repository),
            GoogleAccessTokens(),
            limits=evolve(FAST_LIMITS, page_size=2, **limits),
        )
        tags = ArtifactRegistryTagSource(lister, config.images.repository)
        store = LedgerRefreshStore(engine, log, config.dropdown_menu)
        return await run_refresh(tags, store, config, refresh_id=name, clock=clock)


async def ledger_state(engine: AsyncEngine) -> tuple[list[Any], list[Any]]:
    tags = await query(
        engine, "SELECT tag, digest FROM ledger.tags WHERE removed_at IS NULL ORDER BY tag"
    )
    menu_rows = await query(engine, "SELECT section, tag FROM dashboard.menu ORDER BY 1, 2")
    return [tuple(r) for r in tags], [tuple(r) for r in menu_rows]


GAR = c.config("gar")
PACKAGE = "sciplat-lab"
NEW = "sha256:" + "7" * 64
NO_REMOVALS = RemovalLimit(count=0)
"""``images.maxRemovalsUnconfirmed: 0``: a Docker refresh would keep every unlisted tag."""


async def test_a_listing_in_pages_of_two_gives_the_same_images(
    google: GoogleStandIns, engine: AsyncEngine, event_log: EventLog
) -> None:
    config = google_config(GAR, google)
    google.load("gar", config)

    report = await run(google, engine, event_log, config, "r1")

    assert isinstance(report.summary, RefreshCompleted)
    assert [(r.method, r.status, r.count) for r in report.summary.requests] == [("GET", 200, 3)]
    assert len({r.page_token for r in google.registry.requests}) == 3
    await Fixture("").report_nodes(event_log, config, "empty")
    current = await SpawnerCatalog(SpawnerStore(engine), config).current()
    assert wire.spawner_images_json(current.view.spawner_images()) == c.without_nulls(
        c.read_json("controller/images/gar-before.json")
    )


async def test_a_tag_moved_in_the_registry_shows_in_tag_history(
    google: GoogleStandIns, engine: AsyncEngine, event_log: EventLog
) -> None:
    config = google_config(GAR, google)
    listing = google.load("gar", config)
    old = next(e for e in listing if "recommended" in e["tags"])["uri"].split("@")[1]
    assert (await run(google, engine, event_log, config, "r1")).succeeded

    google.registry.push(PACKAGE, NEW, ["recommended"])
    report = await run(google, engine, event_log, config, "r2")

    assert isinstance(report.summary, RefreshCompleted)
    assert report.summary.moved == 1
    moved = [e for e in await events_of(event_log) if isinstance(e, TagMoved)]
    assert [(e.tag, e.old_digest, e.new_digest) for e in moved] == [("recommended", old, NEW)]
    history = await query(
        engine,
        "SELECT digest, previous_digest, current FROM dashboard.tag_history"
        " WHERE tag = 'recommended' ORDER BY seq",
    )
    assert [tuple(r) for r in history] == [(old, None, False), (NEW, old, True)]


async def test_a_complete_listing_removes_what_it_leaves_out_without_heads(
    google: GoogleStandIns, engine: AsyncEngine, event_log: EventLog
) -> None:
    """Docker tag lists need each removal confirmed by its own HEAD, within
    ``maxRemovalsUnconfirmed``; an Artifact Registry listing is authoritative."""
    config = google_config(GAR, google)
    config = evolve(config, images=evolve(config.images, max_removals_unconfirmed=NO_REMOVALS))
    google.load("gar", config)
    assert (await run(google, engine, event_log, config, "r1")).succeeded
    google.registry.untag("w_2077_41", "exp_w_2077_41_testing", "w_2077_44-amd64")

    report = await run(google, engine, event_log, config, "r2")

    assert isinstance(report.summary, RefreshCompleted)
    assert report.summary.flagged_tags == ()
    removed = sorted(e.tag for e in await events_of(event_log) if isinstance(e, TagRemoved))
    assert removed == ["exp_w_2077_41_testing", "w_2077_41", "w_2077_44-amd64"]
    assert {r.method for r in report.summary.requests} == {"GET"}


async def test_a_failing_page_leaves_the_ledger_unchanged(
    google: GoogleStandIns, engine: AsyncEngine, event_log: EventLog
) -> None:
    config = google_config(GAR, google)
    google.load("gar", config)
    assert (await run(google, engine, event_log, config, "r1")).succeeded
    before = await ledger_state(engine)
    head = await event_log.head()
    # The first page would drop recommended and move a weekly; the second page fails.
    google.registry.untag("recommended")
    google.registry.push(PACKAGE, NEW, ["w_2077_42"])
    google.registry.fail_page(1, *[Fault(503)] * 5)

    report = await run(google, engine, event_log, config, "r2", max_attempts=3)

    assert isinstance(report.summary, RefreshFailed)
    assert "UNAVAILABLE" in report.summary.reason
    assert report.failure == "server_error"
    assert report.summary.retries == 2
    assert await event_log.head() == head + 1  # the RefreshFailed alone
    assert await ledger_state(engine) == before


async def test_resource_exhausted_is_honoured_then_fails_the_refresh(
    google: GoogleStandIns, engine: AsyncEngine, event_log: EventLog
) -> None:
    config = google_config(GAR, google)
    google.load("gar", config)
    google.registry.fail_page(1, Fault(429, retry_after=1))
    started = datetime.now(UTC)

    first = await run(google, engine, event_log, config, "r1")

    assert datetime.now(UTC) - started >= timedelta(seconds=1)
    assert isinstance(first.summary, RefreshCompleted)
    assert first.summary.retries == 1
    counted = {(r.status, r.count) for r in first.summary.requests}
    assert (429, 1) in counted
    before = await ledger_state(engine)

    google.registry.untag("recommended")
    google.registry.fail_page(0, *[Fault(429)] * 5)
    second = await run(google, engine, event_log, config, "r2", max_attempts=3)

    assert isinstance(second.summary, RefreshFailed)
    assert "RESOURCE_EXHAUSTED" in second.summary.reason
    assert second.failure == "rate_limited"
    assert await ledger_state(engine) == before
