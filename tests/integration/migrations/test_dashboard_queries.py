"""Every SQL panel of deploy/grafana/imageledger.json, macros expanded, run as the reader role:
after real traffic (registry, worker, launcher) it answers what happened, and on a
5,000-node ledger it answers in under 100 ms."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import large_ledger as big
from tests.support.dashboard_scenario import REPO, Traffic, run_scenario
from tests.support.database import raw_url
from tests.support.faultproxy import FaultProxy
from tests.support.grafana import TimeRange, expand, panels
from tests.support.registry import RunningRegistry
from worker.adapters.broker import BrokerSettings
from worker.adapters.ledger import EventLog

Answer = tuple[list[str], list[tuple[Any, ...]]]
COLUMNS = {
    "Prepull status per image": ["tag", "display_name", "eligible_nodes", "present_nodes",
                                 "missing_nodes", "prepulled"],
    "Time to prepull per image": ["tag", "first_seen_at", "completed_at",
                                  "time_to_prepull_seconds", "prepulled"],
    "Prepull matrix (the 200 nodes worst off)": ["node", "tag", "state"],
    "Parked and failing pairs": ["node", "tag", "status", "consecutive_failures",
                                 "failures_total", "attempts", "finished_at", "reason"],
    "Failure reasons": ["reason", "status", "pairs", "nodes", "images"],
    "Tag moves over time": ["time", "metric", "moves"],
    "Tag moves": ["moved_at", "source", "tag", "previous_digest", "digest"],
    "Refresh cost and failures": ["time", "requests", "retries", "failures"],
    "Refresh history": ["started_at", "source", "status", "duration_seconds", "tags_total",
                        "discovered", "resolved", "moved", "removed", "requests_total",
                        "retries", "bytes_received", "flagged", "reason"],
    "Nodes": ["eligible", "ineligible", "gone", "truncated_lists"],
    "Nodes and eligibility": ["node", "eligible", "current", "comment", "missing_targets",
                              "image_count", "truncated", "last_inventory_at", "gone_at"],
}  # fmt: skip


async def answers(url: str, span: TimeRange) -> dict[str, Answer]:
    """Each SQL panel's columns and rows, as Grafana would ask them for ``span``."""
    db = await asyncpg.connect(raw_url(url))
    try:
        out = {}
        for panel in panels():
            statement = await db.prepare(expand(panel.sql, span))
            names = [a.name for a in statement.get_attributes()]
            out[panel.title] = (names, [tuple(r) for r in await statement.fetch()])
        return out
    finally:
        await db.close()


async def test_sql_panels_answer_what_the_traffic_did(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
    reader_login: str,
) -> None:
    traffic = await run_scenario(registry, registry_session, fault_proxy, database_url,
                                 engine, broker_settings, rabbit_connection)  # fmt: skip
    span = TimeRange(traffic.began - timedelta(hours=1), traffic.ended + timedelta(minutes=1))
    got = await answers(reader_login, span)
    assert {title: names for title, (names, _) in got.items()} == COLUMNS
    rows = {title: found for title, (_, found) in got.items()}
    check_prepulls(rows, traffic)
    check_registry(rows, traffic, f"{fault_proxy.host}/{REPO}")
    assert rows["Nodes"] == [(2, 1, 0, 0)]
    assert [r[:5] for r in rows["Nodes and eligibility"]] == [
        ("node-c", False, True, "Node is tainted (NoSchedule, maintenance)", 0),
        ("node-a", True, True, None, 0),
        ("node-b", True, True, None, 1),
    ]
    before = TimeRange(traffic.began - timedelta(days=2), traffic.began - timedelta(days=1))
    earlier = await answers(reader_login, before)
    for title in ("Tag moves over time", "Tag moves", "Refresh cost and failures",
                  "Refresh history"):  # fmt: skip
        assert earlier[title][1] == [], f"{title}: the time range filters"


def check_prepulls(rows: dict[str, list[tuple[Any, ...]]], traffic: Traffic) -> None:
    """Status, rollout, matrix and failures after the two prepull rounds."""
    assert rows["Prepull status per image"] == [
        ("w_2077_44", "Weekly 2077_44", 2, 2, 0, True),
        ("w_2077_43", "Weekly 2077_43", 2, 2, 0, True),
        ("d_2077_10_23", "Daily 2077_10_23", 2, 1, 1, False),
    ]
    rollout = {r[0]: r[1:] for r in rows["Time to prepull per image"]}
    assert rows["Time to prepull per image"][0][0] == "w_2077_44"  # newest first
    assert set(rollout) == {"w_2077_44", "w_2077_43", "d_2077_10_23"}
    for tag in ("w_2077_44", "w_2077_43"):
        first_seen, completed, seconds, prepulled = rollout[tag]
        assert traffic.began <= first_seen <= completed <= traffic.ended
        assert seconds == (completed - first_seen).total_seconds()
        assert prepulled
    assert rollout["d_2077_10_23"][1:] == (None, None, False)
    assert rows["Prepull matrix (the 200 nodes worst off)"] == [
        ("node-b", "w_2077_44", "present"),
        ("node-b", "w_2077_43", "present"),
        ("node-b", "d_2077_10_23", "parked"),
    ]
    [pair] = rows["Parked and failing pairs"]
    assert pair[:6] == ("node-b", "d_2077_10_23", "parked", 2, 2, 2)
    assert traffic.began <= pair[6] <= traffic.ended
    assert pair[7].startswith("2 consecutive failures")
    assert rows["Failure reasons"] == [(pair[7], "parked", 1, 1, 1)]


def check_registry(rows: dict[str, list[tuple[Any, ...]]], traffic: Traffic, source: str) -> None:
    """The move of ``recommended`` and the three refreshes, the last one failed."""
    [move] = rows["Tag moves"]
    assert move[1:] == (source, "recommended", traffic.weekly, traffic.newest)
    minute = move[0].timestamp() // 60 * 60
    assert rows["Tag moves over time"] == [(minute, source, 1)]
    history = rows["Refresh history"]
    assert [(r[1], r[2]) for r in history] == [(source, "failed"), (source, "completed"),
                                               (source, "completed")]  # fmt: skip
    failed, second, first = history
    assert "503" in failed[13]
    assert failed[4] is None  # no listing, no tag count
    assert failed[10] >= 1  # retried
    assert (second[4], second[5], second[7], second[13]) == (5, 1, 1, None)  # w_2077_44, move
    assert (first[4], first[5], first[7]) == (4, 4, 0)
    cost = rows["Refresh cost and failures"]
    assert sum(r[1] for r in cost) == sum(r[9] for r in history) > 0
    assert sum(r[2] for r in cost) == sum(r[10] for r in history)
    assert sum(r[3] for r in cost) == 1


async def test_sql_panels_answer_in_under_100_ms_at_5000_nodes(
    event_log: EventLog, database_url: str, reader_login: str
) -> None:
    await big.fill(event_log)
    admin = await asyncpg.connect(raw_url(database_url))
    try:
        await admin.execute("ANALYZE")  # as autovacuum would after a load
    finally:
        await admin.close()
    span = TimeRange(big.NOW - timedelta(days=2, hours=1), big.NOW, "1h")
    db = await asyncpg.connect(raw_url(reader_login))
    slow = {}
    rows = {}
    try:
        for panel in panels():
            sql = expand(panel.sql, span)
            runs = []
            for _ in range(3):
                began = time.perf_counter()
                rows[panel.title] = await db.fetch(sql)
                runs.append((time.perf_counter() - began) * 1000)
            if min(runs) >= 100:
                slow[panel.title] = round(min(runs), 1)
    finally:
        await db.close()
    assert slow == {}, f"best of 3 runs over 100 ms: {slow}"
    check_large(rows)


def check_large(rows: dict[str, list[Any]]) -> None:
    """What the 5,000-node ledger holds, computed from its description."""
    counted = [i for i in range(big.NODES) if i % 50 != 49 and i < big.NODES - 20]
    status = {r["tag"]: tuple(r)[2:] for r in rows["Prepull status per image"]}
    lacking_10 = sum(1 for i in counted if i % 2)
    assert status["w_2077_10"] == (len(counted), len(counted) - lacking_10, lacking_10, False)
    assert status["w_2077_01"] == (len(counted), len(counted), 0, True)
    matrix = rows["Prepull matrix (the 200 nodes worst off)"]
    assert len(matrix) == 200 * 10
    assert Counter(r["state"] for r in matrix) == {"present": 1800, "parked": 50, "failed": 150}
    assert matrix[0]["node"] == big.node_name(5)
    failed = sum(1 for i in counted if i % 10 == 3)
    assert [tuple(r) for r in rows["Failure reasons"]] == [
        ("pod timed out", "failed", failed, failed, 1),
        ("3 consecutive failures", "parked", 50, 50, 1),
    ]
    assert len(rows["Parked and failing pairs"]) == 500
    assert len(rows["Nodes and eligibility"]) == big.NODES
    assert tuple(rows["Nodes"][0]) == (len(counted), 99, 20, 0)
    assert [r["tag"] for r in rows["Tag moves"]] == ["recommended", "recommended"]
    assert len(rows["Refresh history"]) == 96
    assert sum(r["failures"] for r in rows["Refresh cost and failures"]) == 8
