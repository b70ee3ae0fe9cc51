"""The coverage cache (``worker/adapters/ledger/stores/planning.py``) kept up to date from the
log plans exactly like a fresh read of the whole matrix.

A long-lived ``WorkStore`` plans after every step of a random history of node and prepull
events appended to the real log (by itself and by another store, as a second worker would);
a new store, which reads everything, must give the same snapshot. That a full read plans
like the whole matrix is ``test_prepull_snapshot.py``'s business.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.database import raw_url
from worker.adapters.ledger.database import make_engine
from worker.adapters.ledger.eventlog import EventLog
from worker.adapters.ledger.stores.prepull import WorkStore
from worker.domain import events as ev
from worker.domain.prepull import Fact, PlanInput, PrepullSettings
from worker.services.prepull import plan_and_announce

NODES = [f"node{i}" for i in range(6)]
DIGESTS = [f"sha256:{c * 64}" for c in "abcd"]
TARGETS = DIGESTS[:3]
SETTINGS = PrepullSettings(max_attempts=2, in_flight_per_node=2, in_flight_total=4)
REPO = {"registry": "r", "repository": "lab"}

_node, _digest = st.sampled_from(NODES), st.sampled_from(DIGESTS)
_step = st.one_of(
    st.tuples(st.just("seen"), _node, st.booleans()),
    st.tuples(st.just("inventory"), _node, st.sets(_digest), st.sets(_digest)),
    st.tuples(st.just("gone"), _node),
    st.tuples(
        st.sampled_from(["requested", "succeeded", "failed", "parked", "unparked"]), _node, _digest
    ),
    st.tuples(st.just("plan")),  # the long-lived store plans and appends its requests
    st.tuples(st.just("retarget")),  # the prepull set changes (a refresh)
)


def _event(step: tuple[Any, ...], at: datetime) -> ev.Event | None:
    kind, *args = step
    if kind == "seen":
        return ev.NodeSeen(node=args[0], eligible=args[1], occurred_at=at)
    if kind == "inventory":
        appeared = tuple(ev.CachedImage(d, 1) for d in sorted(args[1]))
        gone = tuple(sorted(args[2] - args[1]))
        return ev.NodeInventoryObserved(
            node=args[0], appeared=appeared, disappeared=gone, occurred_at=at
        )
    if kind == "gone":
        return ev.NodeGone(node=args[0], occurred_at=at)
    node, digest = args
    common = {**REPO, "digest": digest, "node": node, "occurred_at": at}
    if kind == "requested":
        return ev.PrepullRequested(tag="t", attempt=1, deadline=at + timedelta(hours=1), **common)
    if kind == "succeeded":
        return ev.PrepullSucceeded(tag="t", **common)
    if kind == "failed":
        return ev.PrepullFailed(tag="t", reason="ErrImagePull", **common)
    if kind == "parked":
        return ev.PrepullParked(failures=2, reason="ErrImagePull", **common)
    if kind == "unparked":
        return ev.PrepullUnparked(reason="operator", **common)
    return None


async def _set_targets(db: asyncpg.Connection, digests: list[str]) -> None:
    await db.execute("DELETE FROM ledger.prepull_targets")
    await db.executemany(
        "INSERT INTO ledger.prepull_targets (registry, repository, tag, digest, position,"
        " reference, display_name, image_type, pull) VALUES ('r', 'lab', $1, $2, $3, $1, $1,"
        " 'Weekly', true)",
        [(f"t{i}", d, i) for i, d in enumerate(digests)],
    )


async def _snapshot(store: WorkStore, now: datetime) -> PlanInput:
    async with store.transaction() as unit:
        return await unit.plan_input(SETTINGS, now)


def _same(kept: PlanInput, fresh: PlanInput) -> None:
    assert kept.eligible_nodes == fresh.eligible_nodes
    assert kept.held_everywhere == fresh.held_everywhere
    assert dict(kept.pairs) == dict(fresh.pairs)


async def _replay(url: str, steps: list[tuple[Any, ...]]) -> None:
    db = await asyncpg.connect(raw_url(url))
    engine = make_engine(url)
    log = EventLog(engine)
    kept, other = WorkStore(log), WorkStore(log)
    start = datetime.now(tz=UTC) - timedelta(hours=1)
    try:
        await db.execute(
            "TRUNCATE ledger.events, ledger.nodes, ledger.node_images, ledger.image_presence,"
            " ledger.outbox"
        )
        await _set_targets(db, TARGETS)
        await _snapshot(kept, start)
        for i, step in enumerate(steps):
            at = start + timedelta(seconds=i + 1)
            if step[0] == "plan":
                async with kept.transaction() as unit:
                    await plan_and_announce(unit, SETTINGS, at)
            elif step[0] == "retarget":
                await _set_targets(db, DIGESTS[i % 2 : i % 2 + 3])
            else:
                event = _event(step, at)
                assert event is not None
                writer = kept if i % 3 else other  # some events come from another worker
                async with writer.transaction() as unit:
                    await unit.append([Fact(event, f"e{i}")])
            _same(await _snapshot(kept, at), await _snapshot(WorkStore(log), at))
        retargets = sum(1 for s in steps if s[0] == "retarget")
        assert kept.coverage.loads <= 1 + retargets  # caught up from the log, not reloaded
    finally:
        await engine.dispose()
        await db.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_step, min_size=1, max_size=25))
def test_kept_coverage_plans_like_a_fresh_read(database_url: str, steps: list[Any]) -> None:
    asyncio.run(_replay(database_url, steps))
