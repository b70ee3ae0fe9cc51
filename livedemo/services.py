"""The demo's own PostgreSQL database, RabbitMQ names and child processes, each removed after."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import asyncpg
from attrs import frozen

from worker.adapters.broker.topology import build_topology

__all__ = [
    "ADMIN_URL",
    "AMQP_URL",
    "DemoError",
    "Process",
    "broker_names",
    "database",
    "imageledger_command",
    "run_command",
    "stop",
    "worker_process",
]

ADMIN_URL = os.environ.get(
    "IMAGELEDGER_DEMO_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("IMAGELEDGER_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


class DemoError(RuntimeError):
    """Something the demo needs did not work; the message says what."""


def _url_for(name: str) -> str:
    base = ADMIN_URL.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"


async def _admin(sql: str) -> None:
    try:
        connection = await asyncpg.connect(ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DemoError(f"PostgreSQL at {ADMIN_URL} is not reachable: {exc}") from exc
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@asynccontextmanager
async def database(name: str) -> AsyncIterator[str]:
    """A fresh, empty database ``name`` (dropped afterwards); yields its SQLAlchemy URL."""
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield _url_for(name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def run_command(*args: str, env: dict[str, str]) -> str:
    """Run an ``imageledger`` command; its output, or a `DemoError` with its stderr."""
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:  # cancelled (Ctrl-C): do not leave it running
            with suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if process.returncode != 0:
        raise DemoError(f"{' '.join(args)} failed: {stderr.decode().strip()}")
    return stdout.decode().strip()


@asynccontextmanager
async def broker_names(prefix: str) -> AsyncIterator[str]:
    """A unique exchange/queue prefix; every exchange and queue of it is deleted afterwards."""
    try:
        yield prefix
    finally:
        await _delete_topology(prefix)


async def _delete_topology(prefix: str) -> None:
    topology = build_topology(prefix, consumer="bridge")  # the worker's queues and its own
    connection = await aio_pika.connect(AMQP_URL)
    try:
        for queue in topology.queues:
            channel = await connection.channel()
            with suppress(aio_pika.exceptions.ChannelClosed):
                await channel.queue_delete(queue.name)
            with suppress(aio_pika.exceptions.ChannelInvalidStateError):
                await channel.close()
        for exchange in topology.exchanges:
            channel = await connection.channel()
            with suppress(aio_pika.exceptions.ChannelClosed):
                await channel.exchange_delete(exchange.name)
            with suppress(aio_pika.exceptions.ChannelInvalidStateError):
                await channel.close()
    finally:
        await connection.close()


@frozen
class Process:
    """A running child (``imageledger run``, ``imageledger kube``, the stand-in cluster),
    the port it serves on, and where its log goes."""

    process: asyncio.subprocess.Process
    port: int
    log_path: Path

    def log_tail(self, lines: int = 15) -> str:
        """The end of its log, for error messages."""
        with suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def imageledger_command() -> list[str]:
    """The installed ``imageledger`` script, else the module through this interpreter."""
    script = shutil.which("imageledger")
    if script is not None:
        return [script]
    return [sys.executable, "-c", "from worker.cli import run; run()"]


@asynccontextmanager
async def worker_process(
    env: dict[str, str], port: int, log_path: Path, *, schedule: bool
) -> AsyncIterator[Process]:
    """Start ``imageledger run`` (its own session: Ctrl-C reaches the demo, which stops it)."""
    args = [*imageledger_command(), "run"] + ([] if schedule else ["--no-schedule"])
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *args, env=env, stdout=log, stderr=log, start_new_session=True
        )
    worker = Process(process, port, log_path)
    try:
        await _wait_healthy(worker)
        yield worker
    finally:
        await stop(process)


async def _wait_healthy(worker: Process, within: float = 30.0) -> None:
    url = f"http://127.0.0.1:{worker.port}/healthz"
    deadline = asyncio.get_running_loop().time() + within
    async with aiohttp.ClientSession() as http:
        while asyncio.get_running_loop().time() < deadline:
            if worker.process.returncode is not None:
                raise DemoError(f"imageledger run exited:\n{worker.log_tail()}")
            with suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=1)) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise DemoError(f"imageledger run not healthy after {within:.0f} s:\n{worker.log_tail()}")


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM (the child finishes what it has in hand and exits 0), then SIGKILL after 10 s."""
    if process.returncode is not None:
        return
    with suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(process.wait()), timeout=10)
    except TimeoutError:
        with suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def unique_name(prefix: str) -> str:
    """``prefix`` and 8 random hex digits."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def config_document(
    registry: str, repository: str, *, short: bool, source: dict[str, Any] | None = None
) -> str:
    """The configuration of the worker and the bridge (JSON is YAML): fast back-off,
    re-planning and timeouts; prepull pods in the stand-in's namespace. ``source`` replaces
    the Docker source of ``registry`` and ``repository`` (``--source google``)."""
    quick = {"backoff": 0.5, "maxBackoff": 2, "planInterval": 0.5}
    steady = {"backoff": 1, "maxBackoff": 5, "planInterval": 1}
    docker = {"type": "docker", "registry": registry, "repository": repository, "insecure": True}
    document = {
        "images": {
            "source": docker if source is None else source,
            "recommendedTag": "recommended",
            "numReleases": 1,
            "numWeeklies": 2,
            "numDailies": 3,
            "refreshInterval": "1m",
            "prepullTimeout": "30s",
        },
        "dropdownMenu": {
            "weekly": {"age": "26w"},
            "daily": {"number": 7},
            "releaseCandidate": {"number": 2},
        },
        "lab": {"nodeSelector": {"nublado": "lab"}, "tolerations": []},
        "prepull": {"maxAttempts": 5, "inFlightPerNode": 2, **(quick if short else steady)},
        "kube": {
            "namespace": "imageledger",
            "inventoryInterval": "1m",
            "retryDelay": "500ms",
            "maxRetryDelay": "5s",
        },
    }
    return json.dumps(document, indent=2)
