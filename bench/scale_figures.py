"""What ``bench/scale.py`` reads back from the ledger: publish-to-fold lags, how long a new
weekly took to reach every eligible node, the ledger's growth, a rebuild, the views' latency."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from bench.scale_platform import Sent
from tests.support.cli import run_cli
from worker.adapters.ledger.schema import PROJECTION_TABLES

__all__ = [
    "VIEWS",
    "day_types",
    "lag_figures",
    "rebuild_figures",
    "rollout_figures",
    "size_sample",
    "view_latency",
    "year_figures",
]

VIEWS = (
    "menu",
    "prepull_status",
    "prepull_targets",
    "prepull_queue",
    "nodes",
    "node_images",
    "images",
    "tags",
    "refreshes",
    "image_rollout",
)
"""The dashboard views timed (``SELECT *`` of each, as a dashboard panel reads it)."""
NOMINAL_DAY = 86_400.0


def _quantiles(values: Sequence[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"p50_s": None, "p99_s": None, "max_s": None}

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 3)

    return {"p50_s": at(0.5), "p99_s": at(0.99), "max_s": round(ordered[-1], 3)}


async def lag_figures(db: asyncpg.Connection, sent: Mapping[str, Sent]) -> dict[str, Any]:
    """Per phase and kind of message: how many were sent, how many appended events (an
    unchanged inventory appends none, so has no fold time in the log), and the lag from
    publishing to the ``recorded_at`` of its first event."""
    rows = await db.fetch(
        "SELECT causation, extract(epoch FROM min(recorded_at))::float8 FROM ledger.events"
        " WHERE causation = ANY($1) GROUP BY causation",
        list(sent),
    )
    folded = {str(r[0]): float(r[1]) for r in rows}
    groups: dict[str, dict[str, list[float]]] = {}
    counts: dict[str, dict[str, int]] = {}
    for message_id, (at, phase, kind) in sent.items():
        for key in (kind, "all"):
            counts.setdefault(phase, {}).setdefault(key, 0)
            counts[phase][key] += 1
            lags = groups.setdefault(phase, {}).setdefault(key, [])
            if message_id in folded:
                lags.append(folded[message_id] - at)
    return {
        phase: {
            kind: {"sent": counts[phase][kind], "with_events": len(lags), **_quantiles(lags)}
            for kind, lags in kinds.items()
        }
        for phase, kinds in groups.items()
    }


async def rollout_figures(
    db: asyncpg.Connection,
    digest: str,
    eligible: int,
    refreshed_at: float,
    bound_s: float,
    received: Mapping[tuple[str, str], float],
) -> dict[str, Any]:
    """When ``digest`` was on every eligible node (its last ``prepull.succeeded`` of a
    distinct node), from the refresh request, against the throttle's lower bound; and where
    a pair's time goes besides the pull: from its ``prepull.requested`` event to the
    launcher receiving the message (the outbox relay and the broker), and from the
    launcher's pod completion to its fold (``completion_fold_s``)."""
    row = await db.fetchrow(
        "SELECT count(DISTINCT data ->> 'node') AS nodes,"
        " extract(epoch FROM min(recorded_at))::float8 AS first,"
        " extract(epoch FROM max(recorded_at))::float8 AS last"
        " FROM ledger.events WHERE type = $1 AND data ->> 'digest' = $2",
        "prepull.succeeded",
        digest,
    )
    first_request = await db.fetchval(
        "SELECT extract(epoch FROM min(recorded_at))::float8 FROM ledger.events"
        " WHERE type = 'prepull.requested' AND data ->> 'digest' = $1",
        digest,
    )
    pairs = await db.fetch(
        "SELECT r.data ->> 'node', extract(epoch FROM r.recorded_at)::float8,"
        " extract(epoch FROM s.recorded_at)::float8, extract(epoch FROM s.occurred_at)::float8"
        " FROM ledger.events r JOIN ledger.events s ON s.type = 'prepull.succeeded'"
        " AND s.data ->> 'digest' = r.data ->> 'digest' AND s.data ->> 'node' = r.data ->> 'node'"
        " WHERE r.type = 'prepull.requested' AND r.data ->> 'digest' = $1",
        digest,
    )
    to_launcher = [received[(n, digest)] - at for n, at, _, _ in pairs if (n, digest) in received]
    cycle = [done_at - at for _, at, done_at, _ in pairs]
    folded = [done_at - finished for _, _, done_at, finished in pairs]
    done = row["nodes"] >= eligible
    took = round(row["last"] - refreshed_at, 2) if done else None
    return {
        "digest": digest,
        "eligible_nodes": eligible,
        "nodes_reached": row["nodes"],
        "lower_bound_s": round(bound_s, 2),
        "first_request_s": None
        if first_request is None
        else round(first_request - refreshed_at, 2),
        "every_node_s": took,
        "vs_lower_bound": None if took is None else round(took / bound_s, 3),
        "request_to_launcher": _quantiles(to_launcher),
        "completion_fold": _quantiles(folded),
        "request_to_fold": _quantiles(cycle),
        "target": 1.2,
        "met": took is not None and took <= 1.2 * bound_s,
    }


async def size_sample(db: asyncpg.Connection) -> dict[str, int]:
    """The log's head and size, and every ledger table's size (with indexes and TOAST)."""
    return {
        "head": int(await db.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events")),
        "events": int(await db.fetchval("SELECT count(*) FROM ledger.events")),
        "ledger_bytes": int(
            await db.fetchval(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'ledger' AND c.relkind = 'r'"
            )
        ),
        "events_bytes": int(await db.fetchval("SELECT pg_total_relation_size('ledger.events')")),
    }


async def day_types(db: asyncpg.Connection, after: int, upto: int) -> dict[str, int]:
    """Events appended between two heads, by type."""
    rows = await db.fetch(
        "SELECT type, count(*) FROM ledger.events WHERE position > $1 AND position <= $2"
        " GROUP BY type ORDER BY type",
        after,
        upto,
    )
    return {str(r[0]): int(r[1]) for r in rows}


async def rebuild_figures(database_url: str, db: asyncpg.Connection) -> dict[str, Any]:
    """``imageledger rebuild`` of the whole database (the workers stopped), timed; and which
    projection tables read otherwise after it, with a few rows only before and only after
    (the live tables are copied into temporary tables of this connection first)."""
    for table in PROJECTION_TABLES:
        await db.execute(
            f"CREATE TEMP TABLE live_{table.name} AS SELECT * FROM ledger.{table.name}"
        )
    began = time.monotonic()
    code, out, err = await run_cli(
        "rebuild", "--json", env={"IMAGELEDGER_DATABASE_URL": database_url}
    )
    wall = time.monotonic() - began
    if code != 0:
        raise RuntimeError(f"imageledger rebuild exited {code}: {err[-2000:]}")
    report = json.loads(out)
    differs = {}
    for table in PROJECTION_TABLES:
        live, rebuilt = f"live_{table.name} t", f"ledger.{table.name} t"
        only = {
            side: [str(r[0]) for r in await db.fetch(
                f"SELECT t::text FROM {a} EXCEPT SELECT t::text FROM {b} ORDER BY 1 LIMIT 5")]
            for side, a, b in (("only_live", live, rebuilt), ("only_rebuilt", rebuilt, live))
        }  # fmt: skip
        if any(only.values()):
            differs[table.name] = only
    return {
        "events": report["events"],
        "seconds": report["seconds"],
        "wall_s": round(wall, 2),
        "events_per_second": report["events_per_second"],
        "differs": differs,
    }


def year_figures(
    day: Mapping[str, int], sim_rounds: float, end: Mapping[str, int], rebuild_s: float
) -> dict[str, Any]:
    """A real day and a year from one simulated day: the events the nodes' reports append
    (``node.*``) scale with the reports a real day holds (288 at a 5-minute cadence)
    against the ``sim_rounds`` the simulated day held; the others (refreshes, prepulls)
    happen once a day either way. Disk: those events at the log's bytes per event, plus
    the projections as they are now; rebuild: the measured seconds per event."""
    real_rounds = NOMINAL_DAY / 300.0
    node = sum(n for t, n in day.items() if t.startswith("node."))
    other = sum(n for t, n in day.items() if not t.startswith("node."))
    per_day = other + node * real_rounds / sim_rounds
    per_event = end["events_bytes"] / max(1, end["events"])
    projections = end["ledger_bytes"] - end["events_bytes"]
    year = per_day * 365
    return {
        "events_per_real_day": round(per_day),
        "events_per_year": round(year),
        "log_bytes_per_event": round(per_event),
        "disk_bytes_per_year": round(year * per_event + projections),
        "disk_gib_per_year": round((year * per_event + projections) / 2**30, 2),
        "rebuild_s_per_year_of_log": round(rebuild_s / max(1, end["events"]) * year, 1),
        "assumes": "node.* events scale with reports per day; one new weekly a day",
    }


async def view_latency(db: asyncpg.Connection, runs: int = 5) -> dict[str, Any]:
    """``SELECT *`` of each dashboard view, ``runs`` times after one warm-up: rows, the
    median and the slowest time in milliseconds."""
    await db.execute("ANALYZE")
    out: dict[str, Any] = {}
    for view in VIEWS:
        times = []
        rows = 0
        for run in range(runs + 1):
            began = time.perf_counter()
            rows = len(await db.fetch(f"SELECT * FROM dashboard.{view}"))
            if run:
                times.append((time.perf_counter() - began) * 1000)
        out[view] = {"rows": rows, "median_ms": round(statistics.median(times), 2),
                     "max_ms": round(max(times), 2)}  # fmt: skip
    return out
