"""``./demo --short`` end to end: it converges, prints no errors and leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from tests.support.database import ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]
AMQP_URL = os.environ.get("IMAGELEDGER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def run_demo(*options: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(ROOT / "demo"),
        "--short",
        *options,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, stdout.decode()


def found(pattern: str, output: str) -> str:
    match = re.search(pattern, output)
    assert match is not None, f"{pattern!r} not in the demo's output:\n{output}"
    return match.group(1)


def existing(paths: list[str]) -> list[str]:
    return [path for path in paths if Path(path).exists()]


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


async def database_exists(name: str) -> bool:
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        return bool(await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await admin.close()


async def broker_names_left(prefix: str) -> list[str]:
    left = []
    connection = await aio_pika.connect(AMQP_URL)
    try:
        for name in (prefix, f"{prefix}.dead"):
            channel = await connection.channel()
            try:
                await channel.declare_exchange(name, passive=True)
                left.append(name)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                pass
        for suffix in (
            "refresh", "pod_completed", "node_inventory", "dead", "refresh.delay",
            "bridge.prepull_requested", "bridge.prepull_requested.delay", "outbound.discard",
        ):  # fmt: skip
            channel = await connection.channel()
            try:
                await channel.declare_queue(f"{prefix}.{suffix}", passive=True)
                left.append(f"{prefix}.{suffix}")
            except aio_pika.exceptions.ChannelNotFoundEntity:
                pass
    finally:
        await connection.close()
    return left


@pytest.mark.slow
async def test_demo_short_converges_and_leaves_nothing_behind() -> None:
    status, output = await run_demo()

    assert status == 0, output
    assert "converged: yes" in output.splitlines()[-1], output
    assert "Traceback" not in output
    assert not re.search(r"\berror\b", output, re.IGNORECASE), output
    assert "menu entry renamed: 'Recommended (Weekly" in output
    assert output.count("converged in") == 2
    statuses = re.findall(r"prepulled (\d+)/(\d+) \(image, node\) pairs", output)
    assert statuses, output
    done, wanted = statuses[-1]
    assert done == wanted != "0", output

    database = found(r"== database (\S+) dropped", output)
    prefix = found(r"exchange (\S+), http", output)
    worker_port = int(found(r"http://127\.0\.0\.1:(\d+)/healthz", output))
    worker_pid = int(found(r"imageledger run: pid (\d+)", output))
    registry_port = int(found(r"pushed \d+ tags to 127\.0\.0\.1:(\d+)/", output))
    folders = [
        found(r"temporary folder (\S+) removed", output),
        found(r"registry stopped, its storage (\S+) removed", output),
    ]

    assert not await database_exists(database)
    assert await broker_names_left(prefix) == []
    assert not listening("127.0.0.1", worker_port)
    assert not listening("127.0.0.1", registry_port)
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)
    assert existing(folders) == []


@pytest.mark.slow
async def test_demo_short_with_a_google_source_converges() -> None:
    """``--source google``: the worker lists the stand-in Artifact Registry (which lists what
    the demo pushed) with a token from the stand-in OAuth endpoint."""
    status, output = await run_demo("--source", "google")

    assert status == 0, output
    assert "converged: yes" in output.splitlines()[-1], output
    assert "Traceback" not in output
    assert "menu entry renamed: 'Recommended (Weekly" in output
    listed = int(found(r"stand-in Google: (\d+) dockerImages.list requests", output))
    assert listed >= 2  # one per refresh at least
    assert int(found(r"(\d+) access token\(s\) issued", output)) >= 1
    api_port = int(
        found(r"Artifact Registry \(REST dockerImages.list\) at http://127\.0\.0\.1:(\d+)", output)
    )
    assert "stand-in Artifact Registry and OAuth token endpoint stopped" in output
    assert not listening("127.0.0.1", api_port)
