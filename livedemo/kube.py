"""The demo's cluster: the stand-in Kubernetes API server (``python -m tests.support.kube``)
and ``imageledger kube`` pointed at it through the kubeconfig the stand-in writes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import aiohttp
from attrs import frozen
from prometheus_client.parser import text_string_to_metric_families

from livedemo.services import DemoError, Process, imageledger_command, stop
from worker import factory

__all__ = ["KubeCluster", "kube_cluster"]


@frozen
class KubeCluster:
    """The running stand-in and bridge, and what the demo asks of them."""

    standin: Process
    bridge: Process
    env: Mapping[str, str]

    def check(self) -> None:
        """Fail with the end of its log if the stand-in or the bridge has exited."""
        for name, process in (("the stand-in", self.standin), ("imageledger kube", self.bridge)):
            if process.process.returncode is not None:
                raise DemoError(f"{name} exited:\n{process.log_tail()}")

    async def request_refresh(self) -> None:
        """What ``imageledger refresh`` does (in this process: no interpreter to start):
        publish a ``refresh.request`` for the worker."""
        operations = factory.Operations(
            amqp_url=self.env["IMAGELEDGER_AMQP_URL"], prefix=self.env["IMAGELEDGER_BROKER_PREFIX"]
        )
        await operations.request_refresh()

    async def pod_counts(self) -> tuple[int, int]:
        """Prepull pods the bridge created, and those it reported failed (``/metrics``)."""
        url = f"http://127.0.0.1:{self.bridge.port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            text = await response.text()
        created = failed = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "imageledger_bridge_pods_created_total":
                    created += sample.value
                elif sample.name == "imageledger_bridge_pods_completed_total":
                    failed += sample.value if sample.labels["outcome"] == "failed" else 0
        return int(created), int(failed)


def standin_args(
    kubeconfig: Path, nodes: int, images: Mapping[str, list[str]], *, short: bool
) -> list[str]:
    """The stand-in's command: ``nodes`` nodes (the last tainted), ``images`` already on
    some, quick pulls, about one first attempt in five failing."""
    args = [sys.executable, "-m", "tests.support.kube", "--write-kubeconfig", str(kubeconfig)]
    args += ["--nodes", str(nodes), "--tainted", "1", "--fail-first-pulls", "0.2"]
    args += ["--pull-seconds", "0.3" if short else "1.5"]
    for node, names in sorted(images.items()):
        args += [arg for name in names for arg in ("--image", f"{node}={name}")]
    return args


async def _wait_for(path: Path, process: Process, within: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not path.exists():  # noqa: ASYNC240 (a stat every 100 ms)
        if process.process.returncode is not None or loop.time() > deadline:
            raise DemoError(f"the stand-in wrote no kubeconfig:\n{process.log_tail()}")
        await asyncio.sleep(0.1)


async def _wait_ready(bridge: Process, within: float = 30.0) -> None:
    url = f"http://127.0.0.1:{bridge.port}/readyz"
    deadline = asyncio.get_running_loop().time() + within
    async with aiohttp.ClientSession() as http:
        while asyncio.get_running_loop().time() < deadline:
            if bridge.process.returncode is not None:
                raise DemoError(f"imageledger kube exited:\n{bridge.log_tail()}")
            with suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=1)) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise DemoError(f"imageledger kube not ready after {within:.0f} s:\n{bridge.log_tail()}")


@asynccontextmanager
async def _started(
    args: list[str], env: Mapping[str, str], log: Path, port: int
) -> AsyncIterator[Process]:
    """A child in a session of its own (Ctrl-C reaches the demo, which stops it)."""
    with log.open("wb") as sink:
        child = await asyncio.create_subprocess_exec(
            *args, env=dict(env), stdout=sink, stderr=sink, start_new_session=True
        )
    try:
        yield Process(child, port, log)
    finally:
        await stop(child)


@asynccontextmanager
async def kube_cluster(
    workdir: Path,
    env: Mapping[str, str],
    port: int,
    nodes: int,
    images: Mapping[str, list[str]],
    *,
    short: bool,
) -> AsyncIterator[KubeCluster]:
    """Start the stand-in, then ``imageledger kube`` on ``env`` (the worker's, plus the
    kubeconfig and ``port``) once the kubeconfig exists; both stopped afterwards."""
    kubeconfig = workdir / "kubeconfig"
    args = standin_args(kubeconfig, nodes, images, short=short)
    async with _started(args, env, workdir / "standin.log", 0) as standin:
        await _wait_for(kubeconfig, standin)
        bridge_env = {**env, "KUBECONFIG": str(kubeconfig), "IMAGELEDGER_PORT": str(port)}
        command = [*imageledger_command(), "kube"]
        async with _started(command, bridge_env, workdir / "bridge.log", port) as bridge:
            await _wait_ready(bridge)
            yield KubeCluster(standin, bridge, env)
