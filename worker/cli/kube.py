"""``imageledger kube``: the bridge to a Kubernetes cluster, and its HTTP server, until SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from worker import factory
from worker.bridge import Bridge, serve_bridge
from worker.cli.common import Command, amqp_url_option, config_option, prefix_option
from worker.config import Config
from worker.logs import configure_logging, log_start

__all__ = ["kube_command"]


async def _serve(
    config: Config, amqp_url: str | None, prefix: str, kubeconfig: Path | None,
    address: tuple[str, int],
) -> None:  # fmt: skip
    """The bridge and its HTTP server until SIGTERM or SIGINT."""
    settings = factory.bridge_settings(config, amqp_url, prefix)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    path = factory.kubeconfig(kubeconfig, config)
    async with (
        factory.bridge_runtime(config, settings, path) as runtime,
        serve_bridge(runtime, *address),
    ):
        await Bridge(runtime).run(stop)


@click.command("kube", cls=Command)
@config_option
@amqp_url_option
@prefix_option
@click.option(
    "--kubeconfig",
    type=Path,
    envvar="KUBECONFIG",
    help="A kubeconfig file (its current context); default: kube.kubeconfig, else the "
    "service account of the pod the bridge runs in.",
)
@click.option("--host", envvar="IMAGELEDGER_HOST", default="0.0.0.0", show_default=True)
@click.option("--port", envvar="IMAGELEDGER_PORT", type=int, default=8080, show_default=True)
def kube_command(
    config_path: Path | None,
    amqp_url: str | None,
    prefix: str,
    kubeconfig: Path | None,
    host: str,
    port: int,
) -> None:
    """Run the bridge to Kubernetes: report nodes, run prepull pods, report their outcomes;
    serve /livez, /readyz and /metrics.

    Publishes node.inventory and node.gone for the cluster's nodes, creates a prepull pod in
    kube.namespace for each prepull.requested, and publishes prepull.pod_completed when the
    pod ends. SIGTERM (or Ctrl-C) finishes the requests in hand and exits 0; pods still
    running are adopted by the next bridge.
    """
    configure_logging("info")
    path = factory.config_path(config_path)
    config = factory.load(path)
    fields = factory.start_fields(path, config, amqp=amqp_url, prefix=prefix)
    log_start("kube", {**fields, "http": f"{host}:{port}"})
    asyncio.run(_serve(config, amqp_url, prefix, kubeconfig, (host, port)))
