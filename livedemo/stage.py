"""Set the stage: registry and pushed repository, database, broker names, worker, cluster.

Each piece is entered on an `AsyncExitStack`, so it is released in reverse order however
the demo ends: the worker stops before its queues and database go, the registry last.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import aio_pika
import aiohttp
import asyncpg
from attrs import frozen

from livedemo.cluster import Cluster, ClusterTiming, SimNode, make_nodes, simulated_cluster
from livedemo.repository import REPOSITORY, SampleRepository
from livedemo.services import (
    AMQP_URL,
    DemoError,
    WorkerProcess,
    broker_names,
    config_document,
    database,
    imageledger_command,
    run_command,
    unique_name,
    worker_process,
)
from tests.support.net import free_port
from tests.support.push import RegistryPusher
from tests.support.registry import run_registry

__all__ = ["Stage", "set_stage"]


def say(text: str) -> None:
    """One line of demo narration."""
    print(text, flush=True)


@frozen
class Stage:
    """Everything running for the demo."""

    pusher: RegistryPusher
    digests: dict[str, str]
    worker: WorkerProcess
    cluster: Cluster
    db: asyncpg.Connection

    def check_worker(self) -> None:
        """Fail with the end of the worker's log if it has exited."""
        if self.worker.process.returncode is not None:
            raise DemoError(f"imageledger run exited:\n{self.worker.log_tail()}")


async def set_stage(
    stack: AsyncExitStack, sample: SampleRepository, *, short: bool, nodes: int, follow: bool
) -> Stage:
    """Start everything on ``stack``; return what the acts need."""
    workdir = Path(tempfile.mkdtemp(prefix="imageledger-demo-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    stack.callback(say, f"== cleaned up: temporary folder {workdir} removed")
    pusher, digests, host = await _registry(stack, workdir, sample)
    url, prefix, worker = await _ledger(stack, workdir, host, short=short, follow=follow)
    cluster = await _cluster(stack, prefix, host, digests, sample, count=nodes, short=short)
    db = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    stack.push_async_callback(db.close)
    return Stage(pusher, digests, worker, cluster, db)


async def _registry(
    stack: AsyncExitStack, workdir: Path, sample: SampleRepository
) -> tuple[RegistryPusher, dict[str, str], str]:
    say("== starting the CNCF registry (docker-registry) on loopback, storage in a temp folder")
    registry = await stack.enter_async_context(run_registry(workdir / "registry"))
    stack.callback(say, f"== registry stopped, its storage {registry.root} removed")
    session = await stack.enter_async_context(aiohttp.ClientSession())
    pusher = registry.pusher(session)
    pusher.concurrency = 16
    began = time.monotonic()
    digests = await pusher.push_tags(REPOSITORY, list(sample.images))
    for alias, target in sample.aliases:
        await pusher.tag(REPOSITORY, alias, digests[target])
        digests[alias] = digests[target]
    say(
        f"   pushed {sample.tag_count} tags to {registry.host}/{REPOSITORY} in "
        f"{time.monotonic() - began:.1f} s: releases, candidates, weeklies, dailies, "
        "experimentals, cycle and architecture tags, recommended and latest_* aliases"
    )
    return pusher, digests, registry.host


async def _ledger(
    stack: AsyncExitStack, workdir: Path, host: str, *, short: bool, follow: bool
) -> tuple[str, str, WorkerProcess]:
    name = unique_name("imageledger_demo")
    url = await stack.enter_async_context(database(name))
    stack.callback(say, f"== database {name} dropped")
    prefix = await stack.enter_async_context(broker_names(unique_name("imageledger-demo")))
    stack.callback(say, f"== RabbitMQ exchanges and queues {prefix}, {prefix}.* deleted")
    config_path = workdir / "config.yaml"
    config_path.write_text(config_document(host, REPOSITORY, short=short))
    port = free_port()
    env = {
        **os.environ,
        "IMAGELEDGER_CONFIG": str(config_path),
        "IMAGELEDGER_DATABASE_URL": url,
        "IMAGELEDGER_AMQP_URL": AMQP_URL,
        "IMAGELEDGER_BROKER_PREFIX": prefix,
        "IMAGELEDGER_HOST": "127.0.0.1",
        "IMAGELEDGER_PORT": str(port),
    }
    migrated = await run_command(*imageledger_command(), "migrate", env=env)
    say(f"== imageledger migrate: {migrated}")
    worker = await stack.enter_async_context(
        worker_process(env, port, workdir / "worker.log", schedule=follow)
    )
    stack.callback(say, "== worker stopped (SIGTERM)")
    say(
        f"== imageledger run: pid {worker.process.pid}, exchange {prefix}, "
        f"http://127.0.0.1:{port}/healthz ok"
    )
    return url, prefix, worker


async def _cluster(
    stack: AsyncExitStack,
    prefix: str,
    host: str,
    digests: dict[str, str],
    sample: SampleRepository,
    *,
    count: int,
    short: bool,
) -> Cluster:
    connection = await aio_pika.connect_robust(AMQP_URL)
    stack.push_async_callback(connection.close)
    nodes = make_nodes(count)
    _initial_images(nodes, digests, sample)
    timing = (
        ClusterTiming(pull_seconds=(0.2, 0.6), inventory_every=2.0)
        if short
        else ClusterTiming(pull_seconds=(1.0, 3.0), inventory_every=5.0)
    )
    cluster = await stack.enter_async_context(
        simulated_cluster(connection, prefix, nodes, f"{host}/{REPOSITORY}", timing)
    )
    tainted = nodes[-1]
    say(
        f"== cluster simulator: {len(nodes)} nodes labelled nublado=lab, {tainted.name} tainted "
        "nvidia.com/gpu=true:NoSchedule; inventories sent; about one prepull in five fails "
        "on its first attempt"
    )
    return cluster


def _initial_images(
    nodes: list[SimNode], digests: dict[str, str], sample: SampleRepository
) -> None:
    """Some nodes already hold the recommended and an old weekly, as a live cluster would."""
    old = [tag for tag in sample.images if tag.startswith("w_")][-1]
    for node in nodes[:2]:
        node.digests.update({digests["recommended"], digests[old]})
    nodes[-1].digests.add(digests[old])
