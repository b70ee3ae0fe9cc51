"""``python -m livedemo.simulate``: the demo's simulated cluster as a process of its own.

The compose stack's stand-in for ``imageledger kube`` and a real cluster: ``--nodes`` nodes
labelled ``nublado=lab`` (the last one tainted ``NoSchedule``) report their inventories on
RabbitMQ and answer ``prepull.requested`` after a short pull, about one in five failing on
its first attempt. It asks for a refresh when it starts (``--no-refresh``: do not), then
runs until SIGTERM or Ctrl-C. RabbitMQ comes from ``IMAGELEDGER_AMQP_URL`` and
``IMAGELEDGER_BROKER_PREFIX``, as for the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from contextlib import suppress

import aio_pika
from aio_pika.exceptions import AMQPError, ChannelClosed

from livedemo.cluster import ClusterTiming, make_nodes, simulated_cluster
from livedemo.repository import REPOSITORY

__all__ = ["main", "simulate"]

AMQP_URL_ENV = "IMAGELEDGER_AMQP_URL"
PREFIX_ENV = "IMAGELEDGER_BROKER_PREFIX"
TIMING = ClusterTiming(pull_seconds=(1.0, 3.0), inventory_every=10.0)


def say(text: str) -> None:
    """One line of output."""
    print(f"simulate: {text}", flush=True)


async def simulate(
    amqp_url: str,
    prefix: str,
    registry: str,
    nodes: int,
    stop: asyncio.Event,
    *,
    refresh: bool = True,
    timing: ClusterTiming = TIMING,
    wait: float = 120.0,
) -> None:
    """Run the cluster on the worker's exchange ``prefix`` until ``stop`` is set; the
    exchange must appear (the worker declares it) within ``wait`` seconds."""
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            try:
                async with simulated_cluster(
                    connection, prefix, make_nodes(nodes), f"{registry}/{REPOSITORY}", timing
                ) as cluster:
                    say(f"{nodes} nodes reporting on exchange {prefix!r}")
                    if refresh:
                        await cluster.request_refresh("compose: first look at the registry")
                        say("refresh.request published")
                    await stop.wait()
                    say(f"{cluster.requests} prepull requests answered; stopping")
                    return
            except ChannelClosed:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                say(f"exchange {prefix!r} not declared yet (is the worker up?); waiting")
                await asyncio.sleep(2.0)
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> int:
    """Parse options, run until SIGTERM or Ctrl-C; 1 when RabbitMQ or the exchange is away."""
    parser = argparse.ArgumentParser(prog="python -m livedemo.simulate", description=__doc__)
    parser.add_argument("--nodes", type=int, default=4, help="Simulated nodes (default 4).")
    parser.add_argument(
        "--registry", default="127.0.0.1:5000", help="Registry host[:port] of the images."
    )
    parser.add_argument("--no-refresh", action="store_true", help="Do not request a refresh.")
    args = parser.parse_args(argv)
    if args.nodes < 2:
        parser.error("--nodes: at least 2 (one of them is tainted)")
    amqp_url = os.environ.get(AMQP_URL_ENV, "amqp://guest:guest@127.0.0.1:5672/")
    prefix = os.environ.get(PREFIX_ENV, "imageledger")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await simulate(
            amqp_url, prefix, args.registry, args.nodes, stop, refresh=not args.no_refresh
        )

    try:
        asyncio.run(run())
    except (AMQPError, OSError) as exc:
        say(f"error: {type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        sys.exit(main())
