"""compose.yaml's seed, migrate, worker, refresh, cluster and bridge, run here as compose runs
them (through the image's entrypoint, secrets as files), converge on the real registry,
PostgreSQL and RabbitMQ.

No Docker engine runs on this machine, so the images and the compose network are not
exercised; the commands, environment, secrets, configuration and entrypoint are.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from livedemo.board import Board, read_board
from tests.support.compose_stack import LocalStack
from tests.support.database import raw_url
from tests.support.manifests import ROOT
from tests.support.net import free_port
from tests.support.registry import RunningRegistry

CONVERGE_WITHIN = 120.0


async def converge(database_url: str, recommended: str) -> Board:
    """The dashboard once it shows convergence on ``recommended``; fails after a while."""
    connection = await asyncpg.connect(raw_url(database_url))
    try:
        deadline = time.monotonic() + CONVERGE_WITHIN
        while True:
            board = await read_board(connection)
            if board.converged(recommended):
                return board
            assert time.monotonic() < deadline, "\n".join(board.render(CONVERGE_WITHIN))
            await asyncio.sleep(1.0)
    finally:
        await connection.close()


def kubeconfig(port: int, token: str) -> str:
    """The ``kubeconfig`` secret as ``deploy/compose/make-secrets`` writes it, for a port here."""
    script = (ROOT / "deploy" / "compose" / "make-secrets").read_text()
    text = script.split('write kubeconfig "', 1)[1].split('"', 1)[0]
    return text.replace("http://cluster:6443", f"http://127.0.0.1:{port}").replace(
        "$(random_password)", token
    )


@pytest.mark.slow
async def test_the_stack_converges(
    tmp_path: Path, registry: RunningRegistry, empty_database_url: str, amqp_url: str
) -> None:
    cluster_port, bridge_port = free_port(), free_port()
    hosts = {
        "http://registry:5000": str(registry.url),
        "registry:5000": registry.host,
        "0.0.0.0": "127.0.0.1",
    }
    secrets = {
        "database_url": empty_database_url,
        "amqp_url": amqp_url,
        "kubeconfig": kubeconfig(cluster_port, uuid.uuid4().hex),
    }
    port = free_port()
    async with LocalStack.open(tmp_path, hosts, secrets) as stack:
        stack.extra_env = {
            "IMAGELEDGER_PORT": str(port),
            "IMAGELEDGER_HOST": "127.0.0.1",
            "IMAGELEDGER_BROKER_PREFIX": f"il-compose-{uuid.uuid4().hex[:8]}",
        }
        seeded = await stack.run("seed")
        match = re.search(r"pushed (\d+) tags .*recommended = (sha256:[0-9a-f]{64})", seeded)
        assert match, seeded
        assert int(match[1]) > 200
        assert "is at revision" in await stack.run("migrate")
        await stack.start("worker")
        health = " ".join(stack.compose["services"]["worker"]["healthcheck"]["test"])
        (path,) = re.findall(r"127\.0\.0\.1:\d+(/\w+)", health)
        await stack.wait_healthy("worker", f"http://127.0.0.1:{port}{path}")
        assert "refresh requested" in await stack.run("refresh")
        await stack.start("cluster")
        await stack.start("bridge", {"IMAGELEDGER_PORT": str(bridge_port)})
        await stack.wait_healthy("bridge", f"http://127.0.0.1:{bridge_port}/readyz")
        board = await converge(empty_database_url, match[2])
    eligible = [node for node, ok in board.nodes if ok]
    assert len(board.nodes) == 4
    assert len(eligible) == 3
    assert board.targets
    assert {(node, t.digest) for node in eligible for t in board.targets} <= board.present
