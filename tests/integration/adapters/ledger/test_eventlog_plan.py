"""The append statement's one plan: made on empty tables, it must still probe by key.

An append runs on a generic plan, made when its statement is first prepared on a connection
(``worker.adapters.ledger.eventlog.GENERIC_PLAN``). On a fresh database the tables are empty then,
and a plan that chose table scans or a by-digest index because they looked cheap would slow
every append as the log and the node images grow. These tests make the plan on empty tables
and read it back.
"""

from __future__ import annotations

import re
from typing import Any

from tests.integration.adapters.ledger.test_eventlog_append import REPO, batch
from tests.support.events import T0
from worker.adapters.ledger.eventlog import APPEND_STATEMENTS, GENERIC_PLAN, SESSION_PLAN, EventLog
from worker.domain.events import TagDiscovered
from worker.domain.field_rules import FOLD_SKEW

_EMPTY_ARGUMENTS = (
    "'{}'::text[], '{}'::text[], '{}'::integer[], '{}'::jsonb[], '{}'::timestamptz[],"
    " '{}'::text[], '{}'::text[]"
)
_FOLD_ARGUMENTS = f", '{FOLD_SKEW.total_seconds()} seconds'::interval"
"""The fold's own parameter (``nodefold.FOLD_PARAMETERS``), after the events' arrays."""
_LEDGER_TABLES = ("events", "nodes", "node_images", "image_presence")


async def _plans(event_log: EventLog) -> tuple[dict[str, dict[str, Any]], str]:
    """Append on empty tables; each append statement's plan counts and generic plan."""
    async with event_log.transaction() as tx:
        await tx.append(batch())
        await tx.append([TagDiscovered(tag="w_2077_44", digest="sha256:c", occurred_at=T0, **REPO)])
        db = tx.driver
        mode = await db.fetchval("SHOW plan_cache_mode")
        counts = {}
        plans = []
        for sql in APPEND_STATEMENTS:
            row = await db.fetchrow(
                "SELECT name, generic_plans, custom_plans, cardinality(parameter_types) AS n"
                " FROM pg_prepared_statements"
                " WHERE statement = $1",
                sql,
            )
            assert row is not None, "the append statement is not prepared (too long to cache?)"
            counts[row["name"]] = dict(row)
            arguments = _EMPTY_ARGUMENTS + (_FOLD_ARGUMENTS if row["n"] == 8 else "")
            await db.execute(GENERIC_PLAN)
            explained = await db.fetch(f"EXPLAIN EXECUTE {row['name']}({arguments})")
            await db.execute(SESSION_PLAN)
            plans.append("\n".join(r[0] for r in explained))
    return counts, "\n".join(plans) + f"\nsession: {mode}"


async def test_appends_run_on_one_generic_plan_each(event_log: EventLog) -> None:
    counts, _ = await _plans(event_log)
    assert len(counts) == 2
    for row in counts.values():
        assert row["generic_plans"] >= 1
        assert row["custom_plans"] == 0


_SCAN = re.compile(
    r"(Seq Scan|Index Only Scan|Index Scan|Bitmap Heap Scan|Tid Scan)(?: Backward)?(?: using \w+)?"
    r" on (\w+) [^\n]*\n([^\n]*)"
)


async def test_the_plan_made_on_empty_tables_never_scans_a_ledger_table(
    event_log: EventLog,
) -> None:
    _, plan = await _plans(event_log)
    scans = [(kind, table, following.strip()) for kind, table, following in _SCAN.findall(plan)]
    assert {"events", "nodes", "node_images"} <= {table for _, table, _ in scans}, plan
    for kind, table, following in scans:
        if table in _LEDGER_TABLES:
            assert kind in ("Index Scan", "Index Only Scan", "Tid Scan"), plan
            assert following.startswith(("Index Cond:", "TID Cond:")), plan


async def test_node_images_are_probed_by_node_and_digest(event_log: EventLog) -> None:
    _, plan = await _plans(event_log)
    conditions = re.findall(r"Scan using \w+ on node_images [^\n]*\n\s+Index Cond: ([^\n]*)", plan)
    assert conditions, plan
    assert all("node = " in condition for condition in conditions), plan
    assert any("digest = " in condition for condition in conditions), plan
    assert not re.search(r"on node_images [^\n]*\n\s+Index Cond: [^\n]*\n\s+Filter:", plan), plan


async def test_the_ledger_transaction_goes_back_to_custom_plans(event_log: EventLog) -> None:
    _, plan = await _plans(event_log)
    assert plan.endswith("session: force_custom_plan")
