"""Benchmark the event log: append + fold, rebuild, and dashboard view latency.

Run from the repository root, with PostgreSQL on 127.0.0.1:5432 (trust auth)::

    python bench/eventlog.py --out bench/results/eventlog.json

``--events N`` (default 1,000,000) sizes the log for the rebuild and view figures; use
e.g. ``--events 200000`` for a quick run. ``--database-url`` names the maintenance database
the bench creates its own throw-away databases from (default
``postgresql://postgres@127.0.0.1:5432/postgres``).

Figures, each beside its ceiling or target measured in the same run:
1. append + fold in batches of 500 events against a bare asyncpg multi-row INSERT of the
   same rows into a table of the same shape (``LIKE ledger.events INCLUDING ALL``),
   alternating in rounds; for the mixed workload (``bench/eventlog_workload.py``) and for a
   stream of pod completions only (the worker's hot path);
2. ``imageledger rebuild``'s code on N events (loaded with COPY), in a child process whose
   peak RSS is read from /proc, beside a bare ``COPY`` of the rows it wrote into empty copies
   of its tables (``bench/eventlog_rebuild.py``);
3. median latency of ``dashboard.menu``, ``dashboard.prepull_status`` and
   ``dashboard.tag_digest_at`` with 5,000 nodes and 100 target images; the query plan of any
   view that misses its target is printed and stored. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import asyncpg

# As ``python bench/<script>.py``: the checkout's root goes first on the path, before bench/,
# so ``worker`` and ``tests`` are this checkout's packages (never a file here, never another copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.eventlog_rebuild import bench_rebuild, bench_reference, rebuild_child
from bench.eventlog_workload import (
    REGISTRY,
    REPOSITORY,
    T0,
    digest,
    node_name,
    tag_name,
    workload,
)
from bench.figures import machine
from worker.adapters.ledger import EventLog, make_engine, upgrade
from worker.adapters.ledger.derived import (
    MenuRow,
    PrepullTargetRow,
    replace_menu,
    replace_prepull_targets,
)
from worker.adapters.ledger.eventlog import prepare_rows
from worker.converter import converter
from worker.domain.events import Event, PrepullRequested, PrepullSucceeded
from worker.domain.images import Repository

SCRIPT = Path(__file__).resolve()
"""This script: the rebuild's child process runs it with ``--child-rebuild``."""
BATCH = 500
TARGETS = {
    "append_ratio": 0.5,
    "append_events_per_second": 10_000,
    "rebuild_events_per_second": 50_000,
    "rebuild_peak_rss_mb": 300,
    "menu_ms": 20,
    "prepull_status_ms": 100,
    "tag_digest_at_ms": 5,
}
COLUMNS = "position, stream, type, version, data, occurred_at, idempotency_key, causation"


def _url(base: str, database: str) -> str:
    return base.rsplit("/", 1)[0] + "/" + database


async def _create(base: str, name: str) -> str:
    admin = await asyncpg.connect(base.replace("+asyncpg", ""))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _url(base, name)
    engine = make_engine(url)
    await upgrade(engine)
    await engine.dispose()
    return url


async def _drop(base: str, name: str) -> None:
    admin = await asyncpg.connect(base.replace("+asyncpg", ""))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _batches(events: Sequence[Event]) -> list[list[Event]]:
    return [list(events[i : i + BATCH]) for i in range(0, len(events), BATCH)]


async def _ceiling(db: Any, batch: list[Event], first: int) -> None:
    _, rows = prepare_rows(batch, converter)
    values: list[str] = []
    args: list[Any] = []
    for offset, row in enumerate(rows):
        base = len(args)
        values.append("(" + ", ".join(f"${base + j}" for j in range(1, 9)) + ")")
        args.extend((first + offset, *row))
    async with db.transaction():
        await db.execute(
            f"INSERT INTO ledger.ceiling ({COLUMNS}) VALUES {', '.join(values)}", *args
        )


def _pod_completions(count: int) -> tuple[list[Event], list[Event]]:
    """Prepull requests (set-up) and then their successes (timed): the worker's hot path."""
    common: dict[str, Any] = {"registry": REGISTRY, "repository": REPOSITORY}
    pairs = [(digest(i // 5000), node_name(i % 5000)) for i in range(count)]
    at = T0 + timedelta(days=60)
    requested: list[Event] = [
        PrepullRequested(tag="w_2077_43", digest=d, node=n, occurred_at=at, **common)
        for d, n in pairs
    ]
    done: list[Event] = [
        PrepullSucceeded(tag="w_2077_43", digest=d, node=n, pod=f"prepull-{n}",
                         occurred_at=at + timedelta(seconds=i), **common)
        for i, (d, n) in enumerate(pairs)
    ]  # fmt: skip
    return requested, done


async def bench_append(base: str, batches: int, stream: str = "workload") -> dict[str, Any]:
    """Append + fold against the bare-INSERT ceiling, alternating in rounds of 10 batches."""
    url = await _create(base, f"imageledger_bench_append_{os.getpid()}")
    engine = make_engine(url)
    log = EventLog(engine)
    events = workload(10**9)
    for chunk in _batches(list(islice(events, 5001))):
        await log.append(chunk)
    if stream == "workload":
        timed = _batches(list(islice(events, batches * BATCH)))
    else:
        requested, done = _pod_completions(batches * BATCH)
        for chunk in _batches(requested):
            await log.append(chunk)
        timed = _batches(done)
    raw = await asyncpg.connect(url.replace("+asyncpg", ""))
    await raw.execute("CREATE TABLE ledger.ceiling (LIKE ledger.events INCLUDING ALL)")
    spent = {"ceiling": 0.0, "append": 0.0}
    position = 1
    for start in range(0, len(timed), 10):
        for batch in timed[start : start + 10]:
            began = time.perf_counter()
            await _ceiling(raw, batch, position)
            spent["ceiling"] += time.perf_counter() - began
            position += len(batch)
        for batch in timed[start : start + 10]:
            began = time.perf_counter()
            await log.append(batch)
            spent["append"] += time.perf_counter() - began
    await raw.close()
    await engine.dispose()
    await _drop(base, url.rsplit("/", 1)[1])
    count = len(timed) * BATCH
    ceiling, append = count / spent["ceiling"], count / spent["append"]
    return {
        "stream": stream,
        "events": count,
        "batch_size": BATCH,
        "ceiling_events_per_second": round(ceiling),
        "append_fold_events_per_second": round(append),
        "ratio": round(append / ceiling, 3),
        "passed": append / ceiling >= TARGETS["append_ratio"]
        and append >= TARGETS["append_events_per_second"],
    }


async def load_log(url: str, total: int) -> float:
    """COPY ``total`` workload events into ledger.events; returns the seconds spent."""
    began = time.perf_counter()
    db = await asyncpg.connect(url.replace("+asyncpg", ""))
    position = 0
    stream = workload(total)
    while chunk := list(islice(stream, 20_000)):
        _, rows = prepare_rows(chunk, converter)
        records = [(position + i + 1, *row) for i, row in enumerate(rows)]
        position += len(records)
        await db.copy_records_to_table(
            "events", schema_name="ledger", columns=COLUMNS.split(", "), records=records
        )
    await db.execute("ANALYZE ledger.events")
    await db.close()
    return time.perf_counter() - began


async def _derived(url: str, images: int) -> None:
    engine = make_engine(url)
    repository = Repository(REGISTRY, REPOSITORY)
    reference = f"{REGISTRY}/{REPOSITORY}"
    targets = [
        PrepullTargetRow(tag_name(n), digest(n), p, f"{reference}:{tag_name(n)}",
                  f"Weekly {tag_name(n)[2:]}", "Weekly", 4 * 10**9, True)
        for p, n in enumerate(reversed(range(images)))
    ]  # fmt: skip
    radio = [MenuRow("radio", t.position, t.tag, t.digest, f"{t.reference}@{t.digest}",
                     t.display_name, t.position > 0) for t in targets]  # fmt: skip
    dropdown = [
        MenuRow("dropdown", p, tag_name(n), digest(n), f"{reference}:{tag_name(n)}@{digest(n)}",
                f"Weekly {tag_name(n)[2:]}", False)
        for p, n in enumerate(reversed(range(2 * images)))
    ]  # fmt: skip
    async with EventLog(engine).transaction() as tx:
        await replace_prepull_targets(tx, repository, targets)
        await replace_menu(tx, repository, radio + dropdown)
    await engine.dispose()


def _rebuild_figures(figures: dict[str, Any]) -> dict[str, Any]:
    figures["passed"] = (
        figures["events_per_second"] >= TARGETS["rebuild_events_per_second"]
        and figures["peak_rss_mb"] < TARGETS["rebuild_peak_rss_mb"]
    )
    return figures


QUERIES = {
    "menu_ms": ("SELECT * FROM dashboard.menu WHERE registry = $1 AND repository = $2", 2),
    "prepull_status_ms": ("SELECT * FROM dashboard.prepull_status", 0),
    "tag_digest_at_ms": ("SELECT * FROM dashboard.tag_digest_at($1, $2)", 2),
}


def _arguments(name: str, rng: random.Random, images: int) -> list[Any]:
    if name == "menu_ms":
        return [REGISTRY, REPOSITORY]
    if name == "tag_digest_at_ms":
        return [tag_name(rng.randrange(images)), T0 + timedelta(days=rng.uniform(0, 30))]
    return []


async def bench_views(url: str, images: int, runs: int = 50) -> dict[str, Any]:
    """Median latency of each view (after 5 warm-up runs); plans of those that miss."""
    await _derived(url, images)
    db = await asyncpg.connect(url.replace("+asyncpg", ""))
    await db.execute("ANALYZE")
    rng = random.Random(3)
    counts = {
        "nodes": await db.fetchval("SELECT count(*) FROM ledger.nodes"),
        "node_images": await db.fetchval("SELECT count(*) FROM ledger.node_images"),
        "prepull_targets": await db.fetchval("SELECT count(*) FROM ledger.prepull_targets"),
        "events": await db.fetchval("SELECT count(*) FROM ledger.events"),
    }
    out: dict[str, Any] = {"data": counts}
    for name, (sql, _) in QUERIES.items():
        times = []
        for run in range(runs + 5):
            args = _arguments(name, rng, images)
            began = time.perf_counter()
            await db.fetch(sql, *args)
            if run >= 5:
                times.append((time.perf_counter() - began) * 1000)
        median = statistics.median(times)
        entry: dict[str, Any] = {
            "median": round(median, 3),
            "p95": round(sorted(times)[int(0.95 * len(times)) - 1], 3),
            "target": TARGETS[name],
        }
        entry["passed"] = median < TARGETS[name]
        if not entry["passed"]:
            plan = await db.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *_arguments(name, rng, images)
            )
            entry["plan"] = [r[0] for r in plan]
            print(f"\n{name} missed its target; plan:\n" + "\n".join(entry["plan"]))
        out[name] = entry
    await db.close()
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run every figure and return the result document."""
    result: dict[str, Any] = {"benchmark": "eventlog", "machine": machine(), "targets": TARGETS}
    print(f"append + fold: {args.append_batches} batches of {BATCH} ...", flush=True)
    result["append"] = await bench_append(args.database_url, args.append_batches)
    print(json.dumps(result["append"]), flush=True)
    pods = await bench_append(args.database_url, args.append_batches, "pod_completions")
    result["append_pod_completions"] = pods
    print(json.dumps(pods), flush=True)
    name = f"imageledger_bench_{os.getpid()}"
    url = await _create(args.database_url, name)
    try:
        print(f"loading {args.events:,} events ...", flush=True)
        result["load_seconds"] = round(await load_log(url, args.events), 1)
        print("rebuild ...", flush=True)
        result["rebuild"] = _rebuild_figures(bench_rebuild(url, SCRIPT))
        print(json.dumps(result["rebuild"]), flush=True)
        print("reference: a bare COPY of the rows the rebuild wrote ...", flush=True)
        reference = await bench_reference(url)
        result["rebuild"]["reference"] = reference
        result["rebuild"]["copy_vs_rebuild"] = round(
            reference["seconds"] / result["rebuild"]["seconds"], 3
        )
        print(json.dumps(reference), flush=True)
        print("views ...", flush=True)
        result["views"] = await bench_views(url, images=100)
        print(json.dumps({k: v for k, v in result["views"].items() if k != "data"}), flush=True)
    finally:
        if not args.keep:
            await _drop(args.database_url, name)
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Write the JSON result here.")
    parser.add_argument("--events", type=int, default=1_000_000, help="Log size (default 1M).")
    parser.add_argument("--append-batches", type=int, default=100, help="Timed batches.")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark database.")
    parser.add_argument("--child-rebuild", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = parse_args()
    if options.child_rebuild:
        asyncio.run(rebuild_child(options.child_rebuild))
        sys.exit(0)
    document = asyncio.run(main(options))
    text = json.dumps(document, indent=2)
    if options.out:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(text + "\n")
    print(text)
