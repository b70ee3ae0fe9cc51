"""Benchmark the refresh against the real registry: cold and warm, each beside its ceiling.

Run from the repository root (needs ``docker-registry`` and PostgreSQL)::

    python bench/refresh.py --out bench/results/refresh.json

A 2,000-tag repository (``--tags``) is pushed to a local CNCF registry. Each of ``--runs``
runs (default 5) uses a fresh database: the cold refresh resolves every tag
(``resolveBudget`` = the tag count) into an empty event log, and the ceiling, a bare aiohttp
loop, makes the same requests (one ``tags/list`` and the same HEADs, same Accept header,
same concurrency); their order alternates from run to run (the ceiling first in even runs).
Then the warm refresh changes nothing and re-verifies only the prepull set and the aliases.
Ratios are taken within each run and reported as min, median and max over the runs.
Logging is the worker's own (``worker.logs``: info, logfmt), to ``--log``.
Targets: cold >= 0.7 of the ceiling; warm < 10% of the cold time (medians of the runs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

import aiohttp

# As ``python bench/<script>.py``: the checkout's root goes first on the path, before bench/,
# so ``worker`` and ``tests`` are this checkout's packages (never a file here, never another copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.figures import machine, spread
from tests.support.database import create_database, drop_database
from tests.support.registry import RunningRegistry, client_for, run_registry
from worker.adapters.ledger import EventLog, LedgerRefreshStore, make_engine, upgrade
from worker.adapters.registry import RegistryLimits, RegistryTagSource
from worker.config import Config
from worker.converter import parse_config
from worker.factory import utcnow
from worker.logs import configure_logging
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
TARGETS = {"cold_vs_ceiling": 0.7, "warm_vs_cold": 0.1}


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


async def _run(
    index: int, tags: list[str], configs: tuple[Config, Config], registry: RunningRegistry,
    session: aiohttp.ClientSession,
) -> dict[str, Any]:  # fmt: skip
    """One run on a fresh database: the ceiling and the cold refresh in alternating order
    (the ceiling first in even runs), then the warm refresh; the run's own ratios."""
    name = f"il_bench_{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    try:
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()
        run: dict[str, Any] = {"order": "ceiling first" if index % 2 == 0 else "refresh first"}
        if index % 2 == 0:
            run["ceiling_seconds"] = await ceiling(registry, session, tags)
        run["cold_seconds"], report = await one_refresh(
            configs[0], registry, session, url, f"cold{index}"
        )
        assert report.summary.discovered == len(tags), report.summary
        if index % 2 == 1:
            run["ceiling_seconds"] = await ceiling(registry, session, tags)
        run["warm_seconds"], report = await one_refresh(
            configs[1], registry, session, url, f"warm{index}"
        )
        assert report.appended == 1, report
        run["warm_heads"] = sum(r.count for r in report.summary.requests if r.method == "HEAD")
    finally:
        await drop_database(name)
    run["cold_vs_ceiling"] = run["ceiling_seconds"] / run["cold_seconds"]
    run["warm_vs_cold"] = run["warm_seconds"] / run["cold_seconds"]
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in run.items()}


async def measure(count: int, runs: int) -> dict[str, Any]:
    """Push the repository, then ``runs`` runs; ratios pair by pair, with their spread."""
    tags = tag_names(count)
    with tempfile.TemporaryDirectory() as work:
        async with run_registry(Path(work)) as registry, aiohttp.ClientSession() as session:
            started = time.perf_counter()
            await registry.pusher(session).push_tags(REPO, tags)
            push_seconds = time.perf_counter() - started
            source = {"type": "docker", "registry": registry.host, "repository": REPO,
                      "insecure": True}  # fmt: skip
            configs = (
                parse_config({"images": {"source": source, "resolveBudget": count}}),
                parse_config({"images": {"source": source}}),
            )
            results = [await _run(i, tags, configs, registry, session) for i in range(runs)]
    cold = spread([r["cold_vs_ceiling"] for r in results])
    warm = spread([r["warm_vs_cold"] for r in results])
    return {
        "benchmark": "refresh",
        "tags": count,
        "push_seconds": round(push_seconds, 2),
        "cold_vs_ceiling": cold,
        "cold_target": TARGETS["cold_vs_ceiling"],
        "cold_pass": cold["median"] >= TARGETS["cold_vs_ceiling"],
        "warm_vs_cold": warm,
        "warm_target": TARGETS["warm_vs_cold"],
        "warm_pass": warm["median"] < TARGETS["warm_vs_cold"],
        "warm_heads": results[-1]["warm_heads"],
        "seconds": {
            key: spread([r[key] for r in results])
            for key in ("ceiling_seconds", "cold_seconds", "warm_seconds")
        },
        "runs": results,
        "machine": machine(),
    }


def production_logging(path: Path) -> TextIO:
    """The worker's logging (``worker.logs``: structlog, info, one logfmt line per event, as
    on a non-terminal stderr), written to ``path``; returns the open file."""
    sink = path.open("a")
    with contextlib.redirect_stderr(sink):
        configure_logging("info")
    return sink


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/refresh.json"))
    parser.add_argument("--tags", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5, help="Runs (pairs), at least 1.")
    parser.add_argument("--log", type=Path, default=Path("/tmp/imageledger-bench-refresh.log"))
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    with production_logging(args.log):
        result = asyncio.run(measure(args.tags, args.runs))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    verdict = {True: "PASS", False: "MISS"}
    cold, warm, seconds = result["cold_vs_ceiling"], result["warm_vs_cold"], result["seconds"]
    print(f"refresh benchmark, {result['tags']} tags, {args.runs} runs, Python "
          f"{result['machine']['python']}")  # fmt: skip
    print(
        f"  cold: {seconds['cold_seconds']['median']} s, ceiling "
        f"{seconds['ceiling_seconds']['median']} s; ratio per run: median {cold['median']} "
        f"(min {cold['min']}, max {cold['max']}; target >= {TARGETS['cold_vs_ceiling']}) "
        f"{verdict[result['cold_pass']]}"
    )
    print(
        f"  warm: {seconds['warm_seconds']['median']} s ({result['warm_heads']} HEADs), of "
        f"cold per run: median {warm['median']} (min {warm['min']}, max {warm['max']}; "
        f"target < {TARGETS['warm_vs_cold']}) {verdict[result['warm_pass']]}"
    )
    print(f"  written to {args.out}; the refreshes' log in {args.log}")


if __name__ == "__main__":
    main()
