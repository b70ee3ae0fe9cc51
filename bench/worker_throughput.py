"""Benchmark the worker: pod completions through ``imageledger run`` beside the minimal loop.

Run from the repository root, with PostgreSQL on 127.0.0.1:5432 (trust auth), RabbitMQ on
127.0.0.1:5672 (guest/guest) and ``docker-registry`` installed::

    python bench/worker_throughput.py --out bench/results/worker.json

For each cluster size (``--nodes``, default 0, 5,000 and 10,000 nodes) a set-up worker
first reads a 30-weekly repository from a local registry (prepull set: the 10 newest) and
folds one inventory per node, in which the two newest targets are missing everywhere and the
third newest on a tenth of the nodes; that ledger is the template every run starts from, so
planning has eligible nodes and pairs to request. Then ``--pairs`` pairs (default 3) of
runs, alternating which goes first, consume the same N pod completions (``--messages``,
default 100,000; answering the missing pairs in the order the planner requests them),
published beforehand (not timed) to a durable quorum queue:

- worker: an ``imageledger run --no-schedule`` child on a copy of the template: decode and
  validate, append with the inline fold, plan, write the outbox, commit, ack. Its progress
  is polled as the completions appended since the last poll (a range of new positions).
- ceiling: in this process, the minimal loop written the fast way: the worker's batching
  (prefetch, batches of up to ``batchSize`` or ``batchTimeout``, waiting only on an empty
  buffer), ``json.loads`` of each body, one multi-row ``INSERT ... SELECT FROM unnest`` of
  the parsed fields per batch into a table with a primary key, one ``ack(multiple=True)``.

Both are timed from the end of their first batch to the end of their last. Per pair: the
ratio of throughputs (worker / ceiling) and of CPU per message (worker / ceiling; process
CPU time over the timed span, the child's from ``/proc/<pid>/stat``); reported as min,
median and max over the pairs, with every run's figures. Also the worker's peak RSS and,
when 0 nodes is measured, the throughput at each size against the throughput at 0 nodes.

Targets (issue 16): worker >= 0.8 of the ceiling; throughput at 10,000 nodes >= 0.9 of 0
nodes; peak RSS < 250 MB. Misses are reported, not hidden; the exit status is 0.
``--profile PATH`` runs every worker child under cProfile (one file per run, suffixed).
See docs/benchmarks.md ("Worker").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

# As ``python bench/<script>.py``: the checkout's root goes first on the path, before bench/,
# so ``worker`` and ``tests`` are this checkout's packages (never a file here, never another copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.figures import machine, spread
from bench.worker_loops import (
    Batching,
    Setup,
    ceiling_run,
    drop_database,
    prepare_state,
    worker_run,
)
from bench.worker_workload import (
    completions,
    inventories,
    missing_pairs,
    push_repository,
    refresh_request,
    worker_config,
)
from tests.support.registry import run_registry
from worker.config import QueueConfig
from worker.domain.messages import NodeInventory, PodCompleted, RefreshRequested
from worker.logs import configure_logging

TARGETS = {"ratio": 0.8, "scaling": 0.9, "peak_rss_mb": 250}
QUEUE = QueueConfig()
"""Production batching (the ``queue:`` defaults): both loops use the same."""


async def _pair(
    setup: Setup, args: argparse.Namespace, template: str, messages: list[tuple[str, bytes]],
    index: int, nodes: int,
) -> dict[str, Any]:  # fmt: skip
    """One ceiling run and one worker run, in alternating order, and their ratios."""
    batching = Batching(args.prefetch, args.batch_size, args.batch_timeout)
    profile = None
    if args.profile is not None:
        profile = args.profile.with_name(f"{args.profile.stem}-{nodes}n-{index}.prof")
    run: dict[str, Any] = {"order": "ceiling first" if index % 2 == 0 else "worker first"}
    for loop in ("ceiling", "worker") if index % 2 == 0 else ("worker", "ceiling"):
        if loop == "ceiling":
            run["ceiling"] = await ceiling_run(setup, messages, batching)
        else:
            key = PodCompleted.ROUTING_KEY
            run["worker"] = await worker_run(setup, template, messages, key, profile)
        print(f"  {nodes} nodes, pair {index + 1}, {loop}: {json.dumps(run[loop])}", flush=True)
    worker, ceiling = run["worker"], run["ceiling"]
    run["ratio"] = round(worker["messages_per_second"] / ceiling["messages_per_second"], 3)
    run["cpu_ratio"] = round(worker["cpu_us_per_message"] / ceiling["cpu_us_per_message"], 3)
    return run


def _summary(nodes: int, state: dict[str, int], runs: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [r["ratio"] for r in runs]
    rss = max(r["worker"]["peak_rss_mb"] for r in runs)
    return {
        "nodes": nodes,
        "state": state,
        "throughput_ratio": spread(ratios),
        "cpu_per_message_ratio": spread([r["cpu_ratio"] for r in runs]),
        "worker_messages_per_second": spread([r["worker"]["messages_per_second"] for r in runs]),
        "ceiling_messages_per_second": spread([r["ceiling"]["messages_per_second"] for r in runs]),
        "worker_cpu_us_per_message": spread([r["worker"]["cpu_us_per_message"] for r in runs]),
        "ceiling_cpu_us_per_message": spread([r["ceiling"]["cpu_us_per_message"] for r in runs]),
        "peak_rss_mb": rss,
        "ratio_pass": statistics.median(ratios) >= TARGETS["ratio"],
        "peak_rss_pass": rss < TARGETS["peak_rss_mb"],
        "runs": runs,
    }


def _scaling(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Median worker throughput at each size over the median at 0 nodes."""
    base = next((r for r in results if r["nodes"] == 0), None)
    if base is None:
        return {}
    zero = base["worker_messages_per_second"]["median"]
    ratios = {
        str(r["nodes"]): round(r["worker_messages_per_second"]["median"] / zero, 3)
        for r in results
        if r["nodes"]
    }
    return {"versus_0_nodes": ratios, "target": TARGETS["scaling"],
            "pass": all(v >= TARGETS["scaling"] for v in ratios.values())}  # fmt: skip


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Per cluster size: the template ledger, then the pairs; the summary document."""
    queue = {"prefetch": args.prefetch, "batchSize": args.batch_size,
             "batchTimeout": f"{args.batch_timeout}s"}  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory() as work:
        async with run_registry(Path(work)) as registry, aiohttp.ClientSession() as session:
            targets = await push_repository(registry, session)
            config = Path(work) / "worker.json"
            config.write_text(json.dumps(worker_config(registry.host, queue)))
            setup = Setup(args.database_url, args.amqp_url, config, Path(args.worker_log))
            for nodes in args.nodes:
                now = datetime.now(tz=UTC)
                state_messages = [
                    (RefreshRequested.ROUTING_KEY, [refresh_request()]),
                    (NodeInventory.ROUTING_KEY, inventories(nodes, registry.host, targets, now)),
                ]
                template, state = await prepare_state(setup, nodes, state_messages)
                print(f"{nodes} nodes: ledger state {json.dumps(state)}", flush=True)
                pairs = missing_pairs(nodes, targets)
                messages = completions(args.messages, pairs, registry.host, targets, now)
                try:
                    runs = [
                        await _pair(setup, args, template, messages, i, nodes)
                        for i in range(args.pairs)
                    ]
                finally:
                    await drop_database(setup, template)
                results.append(_summary(nodes, state | {"missing_pairs": len(pairs)}, runs))
    return {
        "benchmark": "worker",
        "messages": args.messages,
        "pairs": args.pairs,
        "settings": queue,
        "targets": TARGETS,
        "by_nodes": results,
        "scaling": _scaling(results),
        "machine": machine(),
    }


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Write the figures as JSON here.")
    parser.add_argument("--messages", type=int, default=100_000, help="Per run.")
    parser.add_argument("--nodes", type=int, nargs="+", default=[0, 5000, 10_000])
    parser.add_argument("--pairs", type=int, default=3, help="Ceiling/worker pairs per size.")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--worker-log", default="/tmp/imageledger-bench-worker.log")
    parser.add_argument("--profile", type=Path, help="cProfile each worker run: PATH-<n>n-<i>.")
    parser.add_argument("--batch-size", type=int, default=QUEUE.batch_size, help="Both loops.")
    parser.add_argument("--prefetch", type=int, default=QUEUE.prefetch, help="Both loops.")
    parser.add_argument(
        "--batch-timeout", type=float, default=QUEUE.batch_timeout.total_seconds(),
        help="Seconds; both loops.",
    )  # fmt: skip
    args = parser.parse_args()
    if args.messages <= 2 * args.batch_size or args.pairs < 1:
        parser.error("--messages must exceed two batches and --pairs be at least 1")
    return args


def _report(result: dict[str, Any]) -> None:
    verdict = {True: "met", False: "MISSED"}
    print(f"worker benchmark, {result['messages']:,} messages per run")
    for r in result["by_nodes"]:
        t, c = r["throughput_ratio"], r["cpu_per_message_ratio"]
        w, cpu = r["worker_messages_per_second"], r["worker_cpu_us_per_message"]
        print(
            f"  {r['nodes']:,} nodes: worker {w['median']:,.0f} msg/s, "
            f"{t['median']:.2f} of the ceiling (min {t['min']:.2f}, max {t['max']:.2f}; "
            f"target >= {TARGETS['ratio']} {verdict[r['ratio_pass']]}); CPU per message "
            f"{cpu['median']:.0f} us, {c['median']:.2f}x the ceiling's (min {c['min']:.2f}, "
            f"max {c['max']:.2f}); peak RSS {r['peak_rss_mb']} MB "
            f"({verdict[r['peak_rss_pass']]})"
        )
    scaling = result["scaling"]
    if scaling.get("versus_0_nodes"):
        print(f"  throughput against 0 nodes: {scaling['versus_0_nodes']} "
              f"(target >= {TARGETS['scaling']} {verdict[scaling['pass']]})")  # fmt: skip


if __name__ == "__main__":
    arguments = _arguments()
    configure_logging("warning")  # this process's broker and ledger calls; the child logs its own
    document = asyncio.run(main(arguments))
    if arguments.out:
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        arguments.out.write_text(json.dumps(document, indent=2) + "\n")
    _report(document)
