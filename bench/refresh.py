"""Benchmark the refresh against the real registry: cold and warm, each beside its ceiling.

Run from the repository root (needs ``docker-registry`` and PostgreSQL)::

    python bench/refresh.py --out bench/results/refresh.json [--tags 2000] [--runs 3]

A 2,000-tag repository is pushed to a local CNCF registry. The cold refresh resolves every
tag (``resolveBudget`` = the tag count) into an empty event log; the warm refresh changes
nothing and re-verifies only the prepull set and the aliases. The ceiling is a bare aiohttp
loop making the same requests (one ``tags/list`` and the same HEADs, same Accept header,
same concurrency) in the same run, so the ratio is robust to a noisy machine.
Targets: cold >= 0.7 of the ceiling; warm < 10% of the cold time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

# As ``python bench/<script>.py``: the checkout's root goes first on the path, before bench/,
# so ``worker`` and ``tests`` are this checkout's packages (never a file here, never another copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.database import create_database, drop_database
from tests.support.registry import RunningRegistry, client_for, run_registry
from worker.adapters.ledger import migrate
from worker.adapters.ledger.database import make_engine
from worker.adapters.ledger.eventlog import EventLog
from worker.adapters.ledger.stores.refresh import LedgerRefreshStore
from worker.adapters.registry import RegistryLimits
from worker.adapters.registry.source import RegistryTagSource
from worker.config import Config, parse_config
from worker.factory import utcnow
from worker.services.refresh import refresh

REPO = "bench/sciplat-lab"
ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/json;q=0.5",
    ]
)
LIMITS = RegistryLimits(concurrency=8)


def tag_names(count: int) -> list[str]:
    """A realistic mix: weeklies, dailies, releases, experimentals, two aliases."""
    tags: dict[str, None] = dict.fromkeys(["recommended", "latest_weekly"])
    n = 0
    while len(tags) < count:
        kind = n % 4
        if kind == 0:
            tags[f"w_{2000 + n // 208}_{(n // 4) % 52 + 1:02d}"] = None
        elif kind == 1:
            tags[f"d_{2000 + n // 1460}_{(n // 120) % 12 + 1:02d}_{(n // 4) % 28 + 1:02d}"] = None
        elif kind == 2:
            tags[f"r{n // 40}_{(n // 4) % 10}_0"] = None
        else:
            tags[f"exp_build_{n}"] = None
        n += 1
    return list(tags)


async def ceiling(
    registry: RunningRegistry, session: aiohttp.ClientSession, tags: list[str]
) -> float:
    """One tags/list and a HEAD per tag at the client's concurrency, nothing else."""
    base = str(registry.url)
    limit = asyncio.Semaphore(LIMITS.concurrency)
    started = time.perf_counter()
    async with session.get(
        f"{base}/v2/{REPO}/tags/list", headers={"Accept": "application/json"}
    ) as r:
        await r.read()

    async def head(tag: str) -> None:
        async with (
            limit,
            session.head(f"{base}/v2/{REPO}/manifests/{tag}", headers={"Accept": ACCEPT}) as r,
        ):
            assert r.headers.get("Docker-Content-Digest")

    await asyncio.gather(*(head(t) for t in tags))
    return time.perf_counter() - started


async def one_refresh(
    config: Config, registry: RunningRegistry, session: aiohttp.ClientSession, url: str, name: str
) -> tuple[float, Any]:
    engine = make_engine(url)
    try:
        source = RegistryTagSource(
            client_for(registry, session, limits=LIMITS), config.images.repository
        )
        store = LedgerRefreshStore(engine, EventLog(engine), config.dropdown_menu)
        started = time.perf_counter()
        report = await refresh(source, store, config, refresh_id=name, clock=utcnow)
        return time.perf_counter() - started, report
    finally:
        await engine.dispose()


async def measure(count: int, runs: int) -> dict[str, Any]:
    tags = tag_names(count)
    with tempfile.TemporaryDirectory() as work:
        async with run_registry(Path(work)) as registry, aiohttp.ClientSession() as session:
            started = time.perf_counter()
            await registry.pusher(session).push_tags(REPO, tags)
            push_seconds = time.perf_counter() - started
            source = {
                "type": "docker",
                "registry": registry.host,
                "repository": REPO,
                "insecure": True,
            }
            cold_config = parse_config({"images": {"source": source, "resolveBudget": count}})
            warm_config = parse_config({"images": {"source": source}})
            colds, warms, ceilings = [], [], []
            heads_warm = 0
            for run in range(runs):
                ceilings.append(await ceiling(registry, session, tags))
                name = f"il_bench_{uuid.uuid4().hex[:8]}"
                url = await create_database(name)
                try:
                    engine = make_engine(url)
                    await migrate.upgrade(engine)
                    await engine.dispose()
                    cold, report = await one_refresh(
                        cold_config, registry, session, url, f"cold{run}"
                    )
                    assert report.summary.discovered == count, report.summary
                    warm, report = await one_refresh(
                        warm_config, registry, session, url, f"warm{run}"
                    )
                    assert report.appended == 1, report
                    heads_warm = sum(r.count for r in report.summary.requests if r.method == "HEAD")
                    colds.append(cold)
                    warms.append(warm)
                finally:
                    await drop_database(name)
    cold, warm, ceil = (
        statistics.median(colds),
        statistics.median(warms),
        statistics.median(ceilings),
    )
    return {
        "tags": count,
        "push_seconds": round(push_seconds, 2),
        "cold_seconds": round(cold, 3),
        "ceiling_seconds": round(ceil, 3),
        "cold_vs_ceiling": round(ceil / cold, 3),
        "cold_target": 0.7,
        "cold_pass": ceil / cold >= 0.7,
        "warm_seconds": round(warm, 3),
        "warm_heads": heads_warm,
        "warm_vs_cold": round(warm / cold, 3),
        "warm_target": 0.1,
        "warm_pass": warm / cold < 0.1,
        "runs": {"cold": colds, "warm": warms, "ceiling": ceilings},
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/refresh.json"))
    parser.add_argument("--tags", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(measure(args.tags, args.runs))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    verdict = {True: "PASS", False: "MISS"}
    print(f"refresh benchmark, {result['tags']} tags, Python {result['python']}")
    print(
        f"  cold: {result['cold_seconds']} s, ceiling {result['ceiling_seconds']} s, ratio "
        f"{result['cold_vs_ceiling']} (target >= 0.7) {verdict[result['cold_pass']]}"
    )
    print(
        f"  warm: {result['warm_seconds']} s ({result['warm_heads']} HEADs), "
        f"{result['warm_vs_cold']} of cold (target < 0.1) {verdict[result['warm_pass']]}"
    )
    print(f"  written to {args.out}")


if __name__ == "__main__":
    main()
