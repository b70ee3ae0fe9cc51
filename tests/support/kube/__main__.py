"""``python -m tests.support.kube``: the stand-in Kubernetes API server as a process of its own.

It plays a cluster for ``imageledger kube`` in the demo and the compose stack: ``--nodes``
nodes labelled ``nublado=lab`` over two zones, the last ``--tainted`` of them tainted
``nvidia.com/gpu=true:NoSchedule``, simulated kubelets that pull in ``--pull-seconds``, and
the bridge's least-privilege Role bound to its token. Either it writes a kubeconfig for a
client (``--write-kubeconfig``: a free loopback port, TLS with a CA of its own unless
``--no-tls``, a random token), or it serves what a given kubeconfig names
(``--kubeconfig``, or ``KUBECONFIG``: the port and token of its current context, plain
http, e.g. on a compose network). Runs until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from kubernetes_asyncio.client import V1Pod

from tests.support.kube import KubeletTiming, KubeStandIn, Role

__all__ = ["first_pulls_failing", "main", "serve"]

TAINT = ("nvidia.com/gpu", "NoSchedule", "true")
ATTEMPT_ANNOTATION = "imageledger.io/attempt"
"""Where the bridge writes a request's attempt on its pod."""


def say(text: str) -> None:
    """One line of output."""
    print(f"kube stand-in: {text}", flush=True)


def first_pulls_failing(fraction: float) -> Callable[[V1Pod], bool]:
    """About ``fraction`` of the (node, image) pairs fail their first prepull attempt with
    ``ErrImagePull`` (the same pairs every run); later attempts pull."""

    def flaky(pod: V1Pod) -> bool:
        attempt = (pod.metadata.annotations or {}).get(ATTEMPT_ANNOTATION)
        key = f"{pod.spec.node_name}/{pod.spec.containers[0].image}".encode()
        return attempt == "1" and hashlib.sha256(key).digest()[0] < fraction * 256

    return flaky


def read_kubeconfig(path: Path) -> tuple[str, int, str]:
    """Host, port and token of the current context of a kubeconfig for plain http."""
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    (context,) = [c for c in config["contexts"] if c["name"] == config["current-context"]]
    (cluster,) = [c for c in config["clusters"] if c["name"] == context["context"]["cluster"]]
    (user,) = [u for u in config["users"] if u["name"] == context["context"]["user"]]
    server = urlsplit(cluster["cluster"]["server"])
    if server.scheme != "http" or server.port is None:
        raise SystemExit(f"{path}: the server must be http://HOST:PORT, not {server.geturl()}")
    return server.hostname or "", server.port, str(user["user"]["token"])


def add_nodes(standin: KubeStandIn, count: int, tainted: int, images: list[str]) -> None:
    """``node-1`` ... ``node-<count>``; ``images`` as ``NODE=IMAGE`` already on a node."""
    held: dict[str, list[str]] = {}
    for entry in images:
        node, _, image = entry.partition("=")
        held.setdefault(node, []).append(image)
    for i in range(1, count + 1):
        name = f"node-{i}"
        labels = {
            "nublado": "lab",
            "kubernetes.io/hostname": name,
            "topology.kubernetes.io/zone": "zone-a" if i % 2 else "zone-b",
        }
        taints = [TAINT] if i > count - tainted else []
        standin.add_node(name, labels, taints, held.get(name, []))


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Run the stand-in until ``stop`` is set."""
    timing = KubeletTiming(pull_seconds=args.pull_seconds, backoff_seconds=1.0)
    flaky = first_pulls_failing(args.fail_first_pulls) if args.fail_first_pulls else None
    with tempfile.TemporaryDirectory(prefix="kube-standin-") as folder:
        options: dict[str, Any] = {}
        if args.kubeconfig is not None:
            _, port, token = read_kubeconfig(args.kubeconfig)
            options = {"port": port, "token": token, "tls": False}
        else:
            options = {"port": args.port, "tls": not args.no_tls}
        standin = KubeStandIn(
            Path(folder), namespace=args.namespace, role=Role.bridge(args.namespace),
            timing=timing, host=args.listen, flaky=flaky, **options,
        )  # fmt: skip
        await standin.start()
        try:
            add_nodes(standin, args.nodes, args.tainted, args.image)
            if args.write_kubeconfig is not None:
                written = args.write_kubeconfig.with_suffix(".partial")
                written.write_text(standin.kubeconfig.read_text())
                written.replace(args.write_kubeconfig)
            say(
                f"{standin.url}, {args.nodes} nodes ({args.tainted} tainted "
                f"{TAINT[0]}={TAINT[2]}:{TAINT[1]}), pods in namespace {args.namespace}"
            )
            await stop.wait()
            say(f"{len(standin.created)} pods were created; stopping")
        finally:
            await standin.stop()


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.kube", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--write-kubeconfig", type=Path, help="Write a kubeconfig here.")
    where.add_argument("--kubeconfig", type=Path, help="Serve what this kubeconfig names.")
    parser.add_argument("--nodes", type=int, default=4, help="Nodes (default 4).")
    parser.add_argument("--tainted", type=int, default=1, help="Tainted nodes (default 1).")
    parser.add_argument("--image", action="append", default=[], help="NODE=IMAGE held already.")
    parser.add_argument("--pull-seconds", type=float, default=1.0, help="Pull time (1 s).")
    parser.add_argument(
        "--fail-first-pulls", type=float, default=0.0, help="Share of first attempts failing."
    )
    parser.add_argument("--namespace", default="imageledger", help="The bridge's namespace.")
    parser.add_argument("--listen", default="127.0.0.1", help="Address (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=0, help="Port (default: a free one).")
    parser.add_argument("--no-tls", action="store_true", help="Plain http.")
    if os.environ.get("KUBECONFIG") and not {"--write-kubeconfig", "--kubeconfig"} & set(argv):
        argv = [*argv, "--kubeconfig", os.environ["KUBECONFIG"]]
    args = parser.parse_args(argv)
    if not 0 <= args.tainted < args.nodes:
        parser.error("--tainted: fewer than --nodes")
    return args


def main(argv: list[str] | None = None) -> int:
    """Parse options and serve until SIGTERM or Ctrl-C."""
    args = parse(sys.argv[1:] if argv is None else argv)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(args, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
