"""A RabbitMQ cluster failover: two workers lose the quorum queues' leader node mid-stream.

Run from the repository root, as root (the nodes run as user ``rabbitmq``), with
PostgreSQL on 127.0.0.1:5432 (trust auth) and Debian's ``rabbitmq-server`` installed::

    python bench/cluster.py --out bench/results/cluster.json [--messages 20000] [--rate 1000]

It starts a three-node RabbitMQ cluster on this machine (node names, AMQP and distribution
ports of its own, loopback only, temporary folders; the broker on 127.0.0.1:5672 is never
touched) and a database of its own (migrated), runs two ``imageledger run`` workers, each
given the three URLs (worker 1 starting with the node that leads the quorum queues, worker
2 with another), publishes pod completions and node inventories (one in four) with stable
message ids and publisher confirms at ``--rate`` messages a second, and stops the leader's
node (``rabbitmqctl stop``; ``--kill``: SIGKILL of its Erlang VM) once ``--stop-after`` of
them are published. It then checks that nothing was lost (every message's events are in the
log, by causation), nothing folded twice (no idempotency key twice, event counts equal),
nothing dead-lettered, the projections equal a rebuild from the log, and both workers exit
0 on SIGTERM, both consuming every work queue; and reports the time from the stop to the
next fold, the longest pause in folding, when everything published before the stop was
folded, publish-to-fold lags, and when the worker that lost its node was connected and
folding again. The cluster, the database and the temporary folders are removed at the end,
on failure too. Exit status 1 when a check fails. See docs/scale.md ("RabbitMQ cluster").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

# Run as ``python bench/cluster.py``, this file's directory comes first on the path, where
# ``worker`` would name bench/worker.py rather than the package; the repository root takes
# its place (for the test harness's cluster, worker process and traffic).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.cluster_scenario import (  # noqa: E402
    ClusterScenario,
    environment,
    run_cluster_scenario,
)
from tests.support.rabbit_cluster import cluster_unavailable  # noqa: E402


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, help="Write the figures as JSON here.")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="Messages a second.")
    parser.add_argument(
        "--stop-after", type=float, default=0.5, help="Share published before the stop."
    )
    parser.add_argument("--kill", action="store_true", help="SIGKILL the node instead.")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--logs", type=Path, help="Keep the workers' logs in this folder.")
    return parser.parse_args()


def _summary(result: dict[str, Any]) -> str:
    checks, resume, stop = result["checks"], result["resume"], result["stop"]
    workers = "\n".join(
        f"  worker {i} (first {w['first_node'].split('@')[0]}, {w['failovers']} failover(s)): "
        f"lost its node {w['lost_s']} s, reconnected {w['reconnected_s']} s, folding again "
        f"{w['folding_again_s']} s after the stop; longest pause {w['longest_pause_s']} s"
        for i, w in enumerate(resume["workers"], 1)
    )
    return (
        f"{result['messages']:,} messages at {result['rate']:g}/s; {stop['how']} "
        f"{stop['node']} after {stop['after_messages']:,} (command {stop['command_s']} s)\n"
        f"  next fold {resume['first_fold_s']} s after the stop, longest pause "
        f"{resume['longest_pause_s']} s; all published before the stop folded "
        f"{resume['in_flight_folded_s']} s after it\n"
        f"  publish-to-fold lag: p50 {resume['lag_p50_before_stop_s']} s before the stop; "
        f"over all p50 {resume['lag_p50_s']} s, p99 {resume['lag_p99_s']} s, max "
        f"{resume['lag_max_s']} s\n"
        f"{workers}\n"
        f"  consumers per queue at the end {checks['consumers']}, workers healthy "
        f"{checks['workers_healthy']}, exit codes {checks['workers_exit_codes']}\n"
        f"  lost {checks['missing']}, wrong {checks['wrong_effect']}, duplicate keys "
        f"{checks['duplicate_keys']}, dead-lettered {checks['dead_lettered']}, rebuild differs "
        f"{checks['rebuild_differs'] or 'nowhere'}, redelivered {result['redelivered']}, "
        f"PostgreSQL unreachable in {result['database_unreachable_samples']} samples: "
        + ("PASS" if result["passed"] else "FAIL")
    )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run the scenario with the options given."""
    scenario = ClusterScenario(
        messages=args.messages,
        rate=args.rate,
        stop_after=args.stop_after,
        kill=args.kill,
        admin_url=args.database_url,
        logs=args.logs,
    )
    return {**await run_cluster_scenario(scenario), **environment()}


if __name__ == "__main__":
    arguments = _arguments()
    unavailable = cluster_unavailable()
    if unavailable:
        sys.exit(f"bench/cluster.py: {unavailable}")
    figures = asyncio.run(main(arguments))
    if arguments.out:
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        arguments.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(_summary(figures))
    sys.exit(0 if figures["passed"] else 1)
