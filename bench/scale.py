"""A platform of 10,000 nodes, simulated: three workers, a week of weeklies, days sped up.

Run from the repository root, as root (a RabbitMQ vhost of its own via ``rabbitmqctl``),
with PostgreSQL on 127.0.0.1:5432 (trust auth), RabbitMQ on 127.0.0.1:5672 and Debian's
``docker-registry`` installed::

    python bench/scale.py --out bench/results/scale.json [--nodes 10000] [--speedup 10]

It creates a RabbitMQ vhost and a database (migrated) of its own, starts a real registry
holding ``--tags`` weeklies and ``recommended``, and ``--workers`` ``imageledger run``
processes (prepull set: ``recommended`` and the two newest weeklies; the lab's nodes are
those labelled ``pool=lab`` without an untolerated taint). The simulator
(bench/scale_platform.py) reports every node once (the starting state, every node holding
the current targets), then plays the nodes' inventories at their nominal 5-minute cadence
for ``--nominal-seconds`` (1x), then ``--days`` simulated days of ``--day-seconds`` each at
``--speedup`` times that cadence: each day starts with a new weekly and ``recommended``
moved to the previous one, and a ``refresh.request``. Its pod launcher answers every
``prepull.requested`` with a successful pod completion after ``--pull-seconds``.

Figures: the publish-to-fold lag (p50/p99) per phase; per day, the time from the refresh
request until the new weekly was on every eligible node, against the lower bound the
throttle sets (ceil(pairs / inFlightTotal) x pull time; target within 1.2x); the ledger's
growth per simulated day and extrapolated to a year (disk, and ``imageledger rebuild`` time
measured at the end); each dashboard view's latency at the final size. The vhost, the
database and the registry are removed at the end. See docs/scale.md ("A 10,000-node
platform, simulated").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

# As ``python bench/scale.py``: the checkout's root goes first on the path, before bench/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aio_pika
import aiohttp
import asyncpg

from bench.figures import machine
from bench.scale_figures import (
    day_types,
    lag_figures,
    rebuild_figures,
    rollout_figures,
    size_sample,
    view_latency,
    year_figures,
)
from bench.scale_platform import NOMINAL_CADENCE, Platform
from bench.worker_workload import REPOSITORY, SELECTOR
from tests.support.rabbit import own_vhost, queue_depth
from tests.support.registry import RunningRegistry, run_registry
from tests.support.worker_process import WorkerProcess
from worker.adapters.broker import Broker, BrokerSettings
from worker.adapters.ledger import migrate
from worker.adapters.ledger.database import make_engine

PREFIX = "imageledger"
TINY = {"nodes": 50, "tags": 30, "days": 1, "day_seconds": 8.0, "pull_seconds": 0.5,
        "nominal_seconds": 6.0, "cadence": 30.0, "churn": 0.5}  # fmt: skip
"""``--tiny``: the defaults of a platform that runs in under a minute (options given win)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, help="Write the figures as JSON here.")
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=2_000, help="Weeklies in the registry.")
    parser.add_argument("--speedup", type=float, default=10.0, help="Cadence played K x faster.")
    parser.add_argument("--days", type=int, default=1, help="Simulated days.")
    parser.add_argument("--day-seconds", type=float, default=300.0, help="Wall time of a day.")
    parser.add_argument("--pull-seconds", type=float, default=2.0, help="A prepull pod's pull.")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--nominal-seconds", type=float, default=60.0, help="The 1x phase.")
    parser.add_argument("--cadence", type=float, default=NOMINAL_CADENCE,
                        help="Seconds between two inventories of a node at 1x.")  # fmt: skip
    parser.add_argument("--churn", type=float, default=0.1,
                        help="Share of inventories with one image changed.")  # fmt: skip
    parser.add_argument("--in-flight-total", type=int, default=100, help="prepull.inFlightTotal")
    parser.add_argument("--tiny", action="store_true", help="50 nodes, 30 tags, 1 short day.")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--logs", type=Path, help="Keep the workers' logs in this folder.")
    if parser.parse_known_args(argv)[0].tiny:
        parser.set_defaults(**TINY)
    return parser.parse_args(argv)


def worker_config(registry: str, in_flight_total: int) -> dict[str, Any]:
    """The workers' configuration: the registry, the prepull set, the lab's nodes."""
    source = {"type": "docker", "registry": registry, "repository": REPOSITORY, "insecure": True}
    images = {"source": source, "numWeeklies": 2, "numReleases": 0, "numDailies": 0}
    return {
        "images": images,
        "lab": {"nodeSelector": SELECTOR},
        "prepull": {"inFlightTotal": in_flight_total},
    }


@contextlib.asynccontextmanager
async def database(admin_url: str) -> AsyncIterator[str]:
    """A migrated database of our own (its asyncpg URL), dropped at the end."""
    name = f"il_scale_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    raw = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        engine = make_engine(raw.replace("postgresql://", "postgresql+asyncpg://"))
        await migrate.upgrade(engine)
        await engine.dispose()
        yield raw
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Poll ``check`` (a coroutine function) every 0.25 s; seconds it took."""
    began = time.monotonic()
    while not await check():
        if time.monotonic() - began > within:
            raise RuntimeError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.25)
    return round(time.monotonic() - began, 2)


class Backlog:
    """The work queues' depth every second: the most, per phase."""

    def __init__(self, connection: aio_pika.abc.AbstractRobustConnection, platform: Platform):
        self._connection, self._platform = connection, platform
        self.most: dict[str, int] = {}
        self.last = 0

    async def sample(self) -> None:
        queues = [f"{PREFIX}.node_inventory", f"{PREFIX}.pod_completed"]
        while True:
            self.last = sum([await queue_depth(self._connection, q) for q in queues])
            phase = self._platform.phase
            self.most[phase] = max(self.most.get(phase, 0), self.last)
            await asyncio.sleep(1.0)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run the scenario; the figures as a JSON-ready dict."""
    folder = Path(tempfile.mkdtemp(prefix="imageledger-scale-"))
    logs = args.logs or folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        async with (
            own_vhost("scale") as amqp,
            database(args.database_url) as raw,
            run_registry(folder / "registry") as registry,
            aiohttp.ClientSession() as session,
        ):
            return await _scenario(args, amqp, raw, registry, session, logs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _scenario(
    args: argparse.Namespace,
    amqp: str,
    raw: str,
    registry: RunningRegistry,
    session: aiohttp.ClientSession,
    logs: Path,
) -> dict[str, Any]:
    broker = Broker(BrokerSettings(url=amqp, prefix=PREFIX))
    await broker.connect()
    platform = Platform(args.nodes, registry, broker, args.pull_seconds, churn=args.churn)
    began = time.monotonic()
    await platform.push_tags(session, args.tags)
    setup: dict[str, Any] = {"push_tags_s": round(time.monotonic() - began, 2)}
    config = logs / "config.json"
    config.write_text(json.dumps(worker_config(registry.host, args.in_flight_total)))
    url = raw.replace("postgresql://", "postgresql+asyncpg://")
    workers = [
        WorkerProcess(config, url, amqp, PREFIX, logs / f"worker-{i}.log")
        for i in range(1, args.workers + 1)
    ]
    connection = await aio_pika.connect_robust(amqp)
    db = await asyncpg.connect(raw)
    backlog = Backlog(connection, platform)
    sampler = asyncio.create_task(backlog.sample())
    try:
        await asyncio.gather(*(w.start(healthy_within=60) for w in workers))
        await platform.launch(connection, PREFIX)
        result = await _phases(args, platform, db, backlog, setup)
        result["workers"] = {
            "peak_rss_mb": [round(w.peak_rss_mb(), 1) for w in workers],
            "exit_codes": [await w.terminate() for w in workers],
        }
        result["rebuild"] = rebuild = await rebuild_figures(url, db)
        days = result["days"]
        sim_rounds = days[0]["seconds"] / (args.cadence / args.speedup)
        result["year"] = year_figures(
            days[0]["events_by_type"], sim_rounds, result["size_at_end"], rebuild["seconds"]
        )
        result["views"] = await view_latency(db)
        result["backlog_most"] = backlog.most
        return result
    finally:
        sampler.cancel()
        for w in workers:
            await w.kill()
        await db.close()
        await connection.close()
        await broker.close()


async def _phases(
    args: argparse.Namespace, platform: Platform, db: Any, backlog: Backlog, setup: dict[str, Any]
) -> dict[str, Any]:
    async def refreshed() -> bool:
        failed = await db.fetchval(
            "SELECT count(*) FROM ledger.events WHERE type = 'refresh.failed'"
        )
        if failed:
            raise RuntimeError("the first refresh failed; see the workers' logs")
        return bool(await db.fetchval(
            "SELECT count(*) FROM ledger.events WHERE type = 'refresh.completed'"))  # fmt: skip

    async def nodes_known() -> bool:
        return int(await db.fetchval("SELECT count(*) FROM ledger.nodes")) == int(args.nodes)

    await platform.refresh("setup")
    setup["first_refresh_s"] = await until(refreshed, 300, "the first refresh")
    began = time.monotonic()
    await platform.report_all()
    await until(nodes_known, 600, f"{args.nodes} nodes folded")
    setup["first_inventories_s"] = round(time.monotonic() - began, 2)

    platform.phase = "1x"
    await platform.report(args.nominal_seconds, args.cadence)
    fast = args.cadence / args.speedup
    platform.phase = f"{args.speedup:g}x"
    days: list[dict[str, Any]] = []
    for _ in range(args.days):
        start = await size_sample(db)
        tag, digest = await platform.new_weekly()
        refreshed_at = time.time()
        await platform.report(args.day_seconds, fast)
        end = await size_sample(db)
        days.append({"tag": tag, "digest": digest, "refreshed_at": refreshed_at,
                     "seconds": args.day_seconds, "start": start, "end": end})  # fmt: skip
    pairs = platform.eligible_nodes
    bound = math.ceil(pairs / args.in_flight_total) * args.pull_seconds

    async def all_rolled_out() -> bool:
        for day in days:
            reached = await db.fetchval(
                "SELECT count(DISTINCT data ->> 'node') FROM ledger.events"
                " WHERE type = 'prepull.succeeded' AND data ->> 'digest' = $1",
                day["digest"],
            )
            if reached < pairs:
                return False
        return True

    overtime = 0.0
    while not await all_rolled_out() and overtime < max(args.day_seconds, 3 * bound):
        await platform.report(5.0, fast)
        overtime += 5.0

    async def settled() -> bool:
        return backlog.last == 0 and not platform.pulling

    await until(settled, 600, "the queues drained")
    await asyncio.sleep(1.5)
    # The last day lasts until its weekly is everywhere and everything is folded.
    days[-1]["end"] = await size_sample(db)
    days[-1]["seconds"] += overtime
    for day in days:
        day["events_by_type"] = await day_types(db, day["start"]["head"], day["end"]["head"])
        day["events"] = sum(day["events_by_type"].values())
        day["ledger_bytes"] = day["end"]["ledger_bytes"] - day["start"]["ledger_bytes"]
        day["rollout"] = await rollout_figures(
            db, day["digest"], pairs, day["refreshed_at"], bound, platform.received
        )
    return {
        "benchmark": "scale",
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "setup": setup,
        "overtime_s": overtime,
        "lag": await lag_figures(db, platform.sent),
        "days": days,
        "prepull_requests": platform.requests,
        "size_at_end": await size_sample(db),
        "machine": machine(),
    }


def _summary(result: dict[str, Any]) -> str:
    o = result["options"]
    lines = [
        f"{o['nodes']:,} nodes, {o['tags']:,} tags, {o['workers']} workers, {o['speedup']:g}x, "
        f"pull {o['pull_seconds']:g} s; load {result['machine']['load_average']}"
    ]
    for phase, kinds in result["lag"].items():
        for kind, f in kinds.items():
            lines.append(
                f"  lag {phase:>5} {kind:<10} p50 {f['p50_s']} s, p99 {f['p99_s']} s, max "
                f"{f['max_s']} s ({f['with_events']:,} of {f['sent']:,} appended events)"
            )
    for i, day in enumerate(result["days"], 1):
        r = day["rollout"]
        lines.append(
            f"  day {i}: {day['tag']} on {r['nodes_reached']:,}/{r['eligible_nodes']:,} eligible "
            f"nodes {r['every_node_s']} s after the refresh request; lower bound "
            f"{r['lower_bound_s']} s, ratio {r['vs_lower_bound']} (target 1.2): "
            f"{'met' if r['met'] else 'MISSED'}; {day['events']:,} events, "
            f"{day['ledger_bytes'] / 2**20:.1f} MiB"
        )
        lines.append(
            f"    a pair, p50/p99: request to launcher {r['request_to_launcher']['p50_s']}/"
            f"{r['request_to_launcher']['p99_s']} s, completion to fold "
            f"{r['completion_fold']['p50_s']}/{r['completion_fold']['p99_s']} s, request to "
            f"fold {r['request_to_fold']['p50_s']}/{r['request_to_fold']['p99_s']} s"
        )
    y, rb = result["year"], result["rebuild"]
    lines.append(
        f"  a year: {y['events_per_year']:,} events, {y['disk_gib_per_year']} GiB, rebuild "
        f"{y['rebuild_s_per_year_of_log']} s (measured {rb['events']:,} events in "
        f"{rb['seconds']} s; tables differing after it: {sorted(rb['differs']) or 'none'})"
    )
    views = ", ".join(f"{v} {f['median_ms']}" for v, f in result["views"].items())
    lines.append(f"  views (median ms): {views}")
    lines.append(f"  queue backlog at most: {result['backlog_most']}")
    return "\n".join(lines)


if __name__ == "__main__":
    arguments = parse_args()
    figures = asyncio.run(main(arguments))
    if arguments.out:
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        arguments.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(_summary(figures))
