"""The planner's narrowed snapshot (what the store reads) plans exactly like the whole matrix.

The store lists only the pairs in flight or failed and the first pairs a plan could request
(``worker.domain.prepull.request_window``); ``full_snapshot`` lists every (eligible node,
target digest) pair. For random ledger states both must give the same plan.
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
from worker.domain.prepull import (
    PairState,
    PlanInput,
    PrepullSettings,
    PrepullTarget,
    full_snapshot,
    plan_prepulls,
)

NOW = datetime(2077, 11, 1, 12, tzinfo=UTC)
NODES = [f"node{i}" for i in range(6)]
DIGESTS = [f"sha256:{c * 64}" for c in "abcde"]
STATES = [None, "requested", "succeeded", "failed", "parked"]

_node = st.tuples(st.sampled_from(NODES), st.booleans(), st.booleans())  # eligible, gone
_pair = st.fixed_dictionaries(
    {
        "present": st.sampled_from([None, True, False]),
        "state": st.sampled_from(STATES),
        "requests": st.integers(0, 4),
        "failures": st.integers(0, 4),
        "deadline": st.sampled_from([None, NOW - timedelta(minutes=1), NOW + timedelta(1)]),
        "finished": st.sampled_from([None, NOW - timedelta(hours=3), NOW - timedelta(seconds=5)]),
    }
)
_world = st.fixed_dictionaries(
    {
        "nodes": st.lists(_node, unique_by=lambda n: n[0], max_size=6),
        "targets": st.lists(
            st.tuples(st.sampled_from(DIGESTS), st.integers(0, 5)), min_size=1, max_size=6
        ),
        "pairs": st.dictionaries(
            st.tuples(st.sampled_from(NODES), st.sampled_from(DIGESTS)), _pair, max_size=25
        ),
        "per_node": st.integers(1, 3),
        "total": st.integers(1, 8),
        "max_attempts": st.integers(1, 3),
    }
)


async def _store(db: asyncpg.Connection, world: dict[str, Any]) -> None:
    await db.execute(
        "TRUNCATE ledger.nodes, ledger.node_images, ledger.image_presence, ledger.prepull_targets"
    )
    await db.executemany(
        "INSERT INTO ledger.nodes (node, first_seen_at, labels, taints, eligible, seen_at,"
        " gone_at, truncated, image_count) VALUES ($1, $2, '{}', '[]', $3, $2, $4, false, 0)",
        [(n, NOW, eligible, NOW if gone else None) for n, eligible, gone in world["nodes"]],
    )
    await db.executemany(
        "INSERT INTO ledger.prepull_targets (registry, repository, tag, digest, position,"
        " reference, display_name, image_type, pull) VALUES ('r', 'lab', $1, $2, $3, $1, $1,"
        " 'Weekly', true)",
        [(f"t{i}", d, p) for i, (d, p) in enumerate(world["targets"])],
    )
    await db.executemany(
        "INSERT INTO ledger.node_images (node, digest, present, prepull_state, prepull_requests,"
        " prepull_failures, prepull_failures_total, prepull_deadline, prepull_finished_at,"
        " registry, repository, tag) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, 'r', 'lab', 'x')",
        [
            (n, d, p["present"], p["state"], p["requests"], p["failures"], p["deadline"],
             p["finished"])
            for (n, d), p in world["pairs"].items()
        ],
    )  # fmt: skip
    await db.execute(
        "INSERT INTO ledger.image_presence (digest, eligible_nodes)"
        " SELECT ni.digest, count(*) FROM ledger.node_images ni JOIN ledger.nodes n USING (node)"
        " WHERE ni.present AND n.eligible AND n.gone_at IS NULL GROUP BY ni.digest"
    )


def _full(world: dict[str, Any]) -> PlanInput:
    targets = [
        PrepullTarget("r", "lab", f"t{i}", d, p) for i, (d, p) in enumerate(world["targets"])
    ]
    eligible = sorted(n for n, ok, gone in world["nodes"] if ok and not gone)
    digests = {d for d, _ in world["targets"]}
    known = {
        (n, d): PairState(n, d, p["present"] is True, p["state"], p["requests"], p["failures"],
                          p["deadline"], p["finished"], "r", "lab", "x")
        for (n, d), p in world["pairs"].items()
        if d in digests or p["state"] == "requested"
    }  # fmt: skip
    return full_snapshot(targets, eligible, known)


async def _compare(url: str, world: dict[str, Any]) -> None:
    db = await asyncpg.connect(raw_url(url))
    engine = make_engine(url)
    try:
        await _store(db, world)
        prepull = PrepullSettings(
            max_attempts=world["max_attempts"],
            in_flight_per_node=world["per_node"],
            in_flight_total=world["total"],
        )
        async with WorkStore(EventLog(engine)).transaction() as unit:
            narrowed = await unit.plan_input(prepull, NOW)
        full = _full(world)
        assert narrowed.held_everywhere == full.held_everywhere
        assert plan_prepulls(narrowed, prepull, NOW) == plan_prepulls(full, prepull, NOW)
    finally:
        await engine.dispose()
        await db.close()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=_world)
def test_narrowed_snapshot_plans_like_the_whole_matrix(
    database_url: str, world: dict[str, Any]
) -> None:
    asyncio.run(_compare(database_url, world))
