"""The event log benchmark's rebuild figure and its same-run reference, a bare COPY.

The rebuild runs in a child process (``bench/eventlog.py --child-rebuild URL``) so that its
peak RSS is its own. The reference then writes the very rows the rebuild wrote: each
projection table is copied out (binary, not timed), and, timed, in one transaction, loaded
with ``COPY`` into an empty table of the same columns, after which the table's indexes are
built (as the rebuild builds ``node_images``' after its copy). Reading the log, folding and
everything else the rebuild does is what the ratio charges it for.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench.figures import peak_rss_mb
from worker.adapters.ledger import make_engine, rebuild_projections

__all__ = ["PROJECTIONS", "bench_rebuild", "bench_reference", "rebuild_child"]

PROJECTIONS = (
    "tags",
    "tag_history",
    "nodes",
    "node_images",
    "image_presence",
    "refreshes",
    "policies",
)
"""The tables a rebuild empties and refills (the ledger's projections)."""
SCHEMA = "bench_reference"


async def rebuild_child(url: str) -> None:
    """The child process: rebuild, then print its figures as JSON on stdout."""
    engine = make_engine(url)
    report = await rebuild_projections(engine)
    await engine.dispose()
    figures = {
        "events": report.events,
        "seconds": round(report.seconds, 3),
        "events_per_second": round(report.events_per_second),
        "rows_written": report.rows_written,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(json.dumps(figures))


def bench_rebuild(url: str, script: Path) -> dict[str, Any]:
    """Run the rebuild in a child process (``script --child-rebuild URL``)."""
    done = subprocess.run(
        [sys.executable, str(script), "--child-rebuild", url],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


async def _copy_out(db: asyncpg.Connection) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for table in PROJECTIONS:
        buffer = io.BytesIO()
        await db.copy_from_table(table, schema_name="ledger", output=buffer, format="binary")
        out[table] = buffer.getvalue()
    return out


async def _load(db: asyncpg.Connection, data: dict[str, bytes], indexes: list[Any]) -> None:
    async with db.transaction():
        await db.execute("SET LOCAL maintenance_work_mem = '256MB'")  # as the rebuild's
        for table in PROJECTIONS:
            await db.execute(
                f"CREATE TABLE {SCHEMA}.{table} (LIKE ledger.{table} INCLUDING DEFAULTS)"
            )
            await db.copy_to_table(
                table, source=io.BytesIO(data[table]), schema_name=SCHEMA, format="binary"
            )
        for index in indexes:
            await db.execute(index["indexdef"].replace(" ON ledger.", f" ON {SCHEMA}.", 1))


async def bench_reference(url: str) -> dict[str, Any]:
    """COPY the projections' rows into empty copies of their tables, then index them."""
    db = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        rows = {t: int(await db.fetchval(f"SELECT count(*) FROM ledger.{t}")) for t in PROJECTIONS}
        data = await _copy_out(db)
        indexes = await db.fetch(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'ledger' AND tablename = ANY($1)",
            list(PROJECTIONS),
        )
        await db.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await db.execute(f"CREATE SCHEMA {SCHEMA}")
        started = time.perf_counter()
        await _load(db, data, list(indexes))
        seconds = time.perf_counter() - started
        copied = sum(
            [int(await db.fetchval(f"SELECT count(*) FROM {SCHEMA}.{t}")) for t in PROJECTIONS]
        )
        if copied != sum(rows.values()):
            raise RuntimeError(f"the reference copied {copied} rows of {sum(rows.values())}")
        await db.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    finally:
        await db.close()
    return {
        "seconds": round(seconds, 3),
        "rows": sum(rows.values()),
        "rows_by_table": rows,
        "indexes": len(indexes),
        "bytes": sum(len(d) for d in data.values()),
    }
