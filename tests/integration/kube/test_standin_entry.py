"""``python -m tests.support.kube``: the stand-in as a process, seen through the real client."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import yaml

from tests.support.net import free_port
from tests.support.rabbit import wait_until
from worker.adapters.kube import connect
from worker.domain.errors import KubeForbiddenError, KubeUnavailableError

IMAGE = "registry.example.org/sqre/lab@sha256:" + "ab" * 32


@asynccontextmanager
async def standin(*args: str, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """The stand-in with ``args``; stopped with SIGTERM afterwards (it must exit 0)."""
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.kube", *args, stdout=sink, stderr=sink
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 10)
        assert code == 0, logged(log)


def logged(log: Path) -> str:
    """What the stand-in printed."""
    return log.read_text(errors="replace")


def kubeconfig(path: Path, port: int, token: str) -> Path:
    """A plain-http kubeconfig as deploy/compose/make-secrets writes one."""
    context = {"cluster": "standin", "user": "bridge", "namespace": "imageledger"}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "standin", "cluster": {"server": f"http://127.0.0.1:{port}"}}
                ],
                "users": [{"name": "bridge", "user": {"token": token}}],
                "contexts": [{"name": "standin", "context": context}],
                "current-context": "standin",
            }
        )
    )
    return path


async def test_it_serves_what_a_given_kubeconfig_names(tmp_path: Path) -> None:
    port = free_port()
    config = kubeconfig(tmp_path / "kubeconfig", port, "s3cret-token")
    args = ("--kubeconfig", str(config), "--nodes", "3", "--image", f"node-1={IMAGE}")
    async with standin(*args, log=tmp_path / "standin.log"):
        async with connect(config, request_seconds=2) as cluster:

            async def listed() -> bool:
                try:
                    await cluster.nodes().list_nodes()
                except KubeUnavailableError as exc:
                    if isinstance(exc, KubeForbiddenError):
                        raise
                    return False  # not listening yet
                return True

            await wait_until(listed, within=15, what="the stand-in answering")
            listing = await cluster.nodes().list_nodes()
        wrong = kubeconfig(tmp_path / "wrong", port, "not-the-token")
        async with connect(wrong, request_seconds=2) as stranger:
            with pytest.raises(KubeForbiddenError, match="401"):
                await stranger.nodes().list_nodes()
    nodes = {node.name: node for node in listing.nodes}
    assert sorted(nodes) == ["node-1", "node-2", "node-3"]
    assert [bool(nodes[n].taints) for n in sorted(nodes)] == [False, False, True]
    assert nodes["node-1"].labels["nublado"] == "lab"
    assert [name for image in nodes["node-1"].images for name in image.names] == [IMAGE]


async def test_it_writes_a_kubeconfig_with_tls(tmp_path: Path) -> None:
    config = tmp_path / "written" / "kubeconfig"
    config.parent.mkdir()
    async with standin("--write-kubeconfig", str(config), "--nodes", "2", log=tmp_path / "log"):
        await wait_until(config.exists, within=15, what="the kubeconfig")
        server = yaml.safe_load(config.read_text())["clusters"][0]["cluster"]["server"]
        async with connect(config, request_seconds=5) as cluster:
            listing = await cluster.nodes().list_nodes()
    assert server.startswith("https://127.0.0.1:")
    assert sorted(node.name for node in listing.nodes) == ["node-1", "node-2"]
