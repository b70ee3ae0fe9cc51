"""A time from a wrong clock cannot pin a node (issue 12, fault 1), inline and in a rebuild.

The edge now refuses message times far ahead of the worker's clock, but a log written before
may hold them: one ``node.inventory`` dated 9999 with a ``NoSchedule`` taint, whose newest
observation would win for ever. Both folds count a stored node or prepull event at no later
than its recording plus ``FOLD_SKEW`` (``worker.domain.ledger.as_folded``). These tests store
such events directly in the log, bypassing the edge, as an old log holds them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger.eventlog import EventLog
from worker.adapters.ledger.projections import load_state
from worker.adapters.ledger.stores.prepull import WorkStore
from worker.cli.db import rebuild_command
from worker.domain.events import CachedImage, Event, NodeInventoryObserved, NodeSeen, PrepullFailed
from worker.domain.field_rules import FOLD_SKEW
from worker.domain.messages import Delivery, NodeInventory
from worker.domain.node_observation import NodeRules
from worker.domain.nodes import Taint
from worker.domain.projection import LedgerState
from worker.services.nodes import record_inventories

FAR_AHEAD = datetime(9999, 1, 1, tzinfo=UTC)
NODE = "node-a"
DIGEST = "sha256:" + "a" * 64
GPU = Taint("gpu", "NoSchedule", "true")
TAINTED = "Node is tainted (NoSchedule, gpu = true)"
SOURCE = {"registry": "registry.test", "repository": "lsst/sciplat"}

_NODE_ROW = text(
    "SELECT n.eligible, n.taints, n.comment, n.seen_at, n.last_inventory_at, i.present,"
    " i.observed_at FROM ledger.nodes n JOIN ledger.node_images i USING (node)"
    " WHERE n.node = :node AND i.digest = :digest"
)
_AGE_THE_LOG = text("UPDATE ledger.events SET recorded_at = recorded_at - interval '1 hour'")


def far_ahead_inventory() -> list[Event]:
    """What one ``node.inventory`` dated 9999 with a ``NoSchedule`` taint recorded."""
    return [
        NodeSeen(node=NODE, taints=(GPU,), eligible=False, comment=TAINTED, occurred_at=FAR_AHEAD),
        NodeInventoryObserved(
            node=NODE, appeared=(CachedImage(DIGEST, 10),), image_count=1, occurred_at=FAR_AHEAD
        ),
    ]


async def real_inventory(log: EventLog, at: datetime) -> dict[str, int]:
    """A real ``node.inventory`` observed at ``at`` (untainted, the image gone), through
    the worker's own decisions and append; returns the new events by type."""
    message = NodeInventory(node=NODE, observed_at=at, labels={}, taints=(), images=())
    delivery = Delivery(message, f"inventory-{at.isoformat()}", "node.inventory")
    async with WorkStore(log).transaction() as unit:
        return await record_inventories(unit, [delivery], NodeRules())


async def node_row(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        row = (await connection.execute(_NODE_ROW, {"node": NODE, "digest": DIGEST})).one()
    return dict(row._mapping)


async def recorded_at(log: EventLog) -> list[datetime]:
    """When the log recorded each of its events, in position order."""
    return [r.recorded_at for r in await log.read()]


async def state(engine: AsyncEngine) -> LedgerState:
    async with engine.connect() as connection:
        return await load_state((await connection.get_raw_connection()).driver_connection)


async def imageledger_rebuild(database_url: str) -> None:
    """``imageledger rebuild``, as an operator runs it (in a thread: it runs its own loop)."""
    env = {"IMAGELEDGER_DATABASE_URL": database_url}
    result = await asyncio.to_thread(CliRunner().invoke, rebuild_command, [], env=env)
    assert result.exit_code == 0, result.output
    assert "rebuilt the projections from" in result.output


async def test_the_inline_fold_counts_a_far_future_event_at_its_recording_plus_the_skew(
    event_log: EventLog, engine: AsyncEngine
) -> None:
    await event_log.append(far_ahead_inventory())
    (stamp, _) = await recorded_at(event_log)
    pinned_until = stamp + FOLD_SKEW
    assert await node_row(engine) == {
        "eligible": False,
        "taints": [{"key": "gpu", "effect": "NoSchedule", "value": "true"}],
        "comment": TAINTED,
        "seen_at": pinned_until,
        "last_inventory_at": pinned_until,
        "present": True,
        "observed_at": pinned_until,
    }
    # A real inventory observed once that time has passed wins (observed a second after it,
    # so the test need not wait five minutes; the edge's clock check is not this test's).
    at = pinned_until + timedelta(seconds=1)
    assert await real_inventory(event_log, at) == {
        "node.seen": 1,
        "node.inventory_observed": 1,
    }
    counted = min(at, (await recorded_at(event_log))[-1] + FOLD_SKEW)
    assert counted > pinned_until
    assert await node_row(engine) == {
        "eligible": True,
        "taints": [],
        "comment": None,
        "seen_at": counted,
        "last_inventory_at": counted,
        "present": False,
        "observed_at": counted,
    }


async def test_a_far_future_pod_completion_cannot_freeze_the_back_off(
    event_log: EventLog, engine: AsyncEngine
) -> None:
    await event_log.append(far_ahead_inventory()[:1])
    failed = PrepullFailed(
        node=NODE, digest=DIGEST, reason="ErrImagePull", occurred_at=FAR_AHEAD, **SOURCE
    )
    await event_log.append([failed])
    stamp = (await recorded_at(event_log))[-1]
    async with engine.connect() as connection:
        finished = await connection.scalar(
            text("SELECT prepull_finished_at FROM ledger.node_images WHERE node = :node"),
            {"node": NODE},
        )
    assert finished == stamp + FOLD_SKEW


async def test_a_rebuild_heals_a_log_holding_a_far_future_inventory(
    event_log: EventLog, engine: AsyncEngine, database_url: str
) -> None:
    await event_log.append(far_ahead_inventory())
    async with engine.begin() as connection:
        await connection.execute(_AGE_THE_LOG)  # recorded an hour ago, as an old log holds it
    await imageledger_rebuild(database_url)
    (stamp, _) = await recorded_at(event_log)
    before = await node_row(engine)
    assert (before["eligible"], before["seen_at"]) == (False, stamp + FOLD_SKEW)
    # The first real inventory since wins: in the worker's decisions and the inline fold...
    now = datetime.now(UTC)
    assert await real_inventory(event_log, now) == {
        "node.seen": 1,
        "node.inventory_observed": 1,
    }
    healed = {
        "eligible": True,
        "taints": [],
        "comment": None,
        "seen_at": now,
        "last_inventory_at": now,
        "present": False,
        "observed_at": now,
    }
    assert await node_row(engine) == healed
    live = await state(engine)
    # ... and after another rebuild.
    await imageledger_rebuild(database_url)
    assert await node_row(engine) == healed
    assert await state(engine) == live
