"""Set the stage: registry and pushed repository, database, broker names, worker, cluster.

The cluster is the stand-in Kubernetes API server with its simulated kubelets, and
``imageledger kube`` between it and RabbitMQ, as a deployment runs it. Each piece is entered
on an `AsyncExitStack`, so it is released in reverse order however the demo ends: the bridge
and the worker stop before their queues and database go, the registry last.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import asyncpg
from attrs import frozen

from livedemo.google import GOOGLE_HOST, GOOGLE_PATH, GoogleDemo, google_source, start_google
from livedemo.kube import KubeCluster, kube_cluster
from livedemo.repository import REPOSITORY, SampleRepository
from livedemo.services import (
    AMQP_URL,
    DemoError,
    Process,
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
    worker: Process
    cluster: KubeCluster
    db: asyncpg.Connection
    repository: str = REPOSITORY
    """Where the images are pushed (the Docker API's repository path)."""
    google: GoogleDemo | None = None
    """The stand-in Google of ``--source google``, listing what was pushed."""

    def pushed(self, digests: dict[str, str]) -> None:
        """Tags were pushed or moved: the stand-in Artifact Registry lists them too."""
        self.digests.update(digests)
        if self.google is not None:
            self.google.serve(self.digests)

    def check_worker(self) -> None:
        """Fail with the end of its log if the worker, the bridge or the stand-in exited."""
        if self.worker.process.returncode is not None:
            raise DemoError(f"imageledger run exited:\n{self.worker.log_tail()}")
        self.cluster.check()


async def set_stage(
    stack: AsyncExitStack,
    sample: SampleRepository,
    *,
    short: bool,
    nodes: int,
    follow: bool,
    source: str = "docker",
) -> Stage:
    """Start everything on ``stack``; return what the acts need."""
    workdir = Path(tempfile.mkdtemp(prefix="imageledger-demo-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    stack.callback(say, f"== cleaned up: temporary folder {workdir} removed")
    google = await _google(stack, workdir) if source == "google" else None
    path = REPOSITORY if google is None else GOOGLE_PATH
    pusher, digests, host = await _registry(stack, workdir, sample, path)
    environment: dict[str, str] = {}
    document = config_document(host, path, short=short)
    if google is not None:
        google.serve(digests)
        environment["GOOGLE_APPLICATION_CREDENTIALS"] = str(google.key_file)
        document = config_document(host, path, short=short, source=google_source(google, host))
    url, env, worker = await _ledger(stack, workdir, document, environment, follow=follow)
    name = f"{host}/{REPOSITORY}" if google is None else f"{GOOGLE_HOST}/{GOOGLE_PATH}"
    images = _initial_images(nodes, name, digests, sample)
    cluster = await _cluster(stack, workdir, env, nodes, images, short=short)
    db = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    stack.push_async_callback(db.close)
    return Stage(pusher, digests, worker, cluster, db, path, google)


async def _google(stack: AsyncExitStack, workdir: Path) -> GoogleDemo:
    google = await start_google(stack, workdir)
    stack.callback(say, "== stand-in Artifact Registry and OAuth token endpoint stopped")
    say(
        f"== stand-in Artifact Registry (REST dockerImages.list) at {google.registry.endpoint}"
        f" and OAuth token endpoint at {google.oauth.token_uri}; the worker's credentials: a"
        f" service-account key generated now ({google.key_file.name}), exchanged by google-auth"
    )
    return google


async def _registry(
    stack: AsyncExitStack, workdir: Path, sample: SampleRepository, path: str
) -> tuple[RegistryPusher, dict[str, str], str]:
    say("== starting the CNCF registry (docker-registry) on loopback, storage in a temp folder")
    registry = await stack.enter_async_context(run_registry(workdir / "registry"))
    stack.callback(say, f"== registry stopped, its storage {registry.root} removed")
    session = await stack.enter_async_context(aiohttp.ClientSession())
    pusher = registry.pusher(session)
    pusher.concurrency = 16
    began = time.monotonic()
    digests = await pusher.push_tags(path, list(sample.images))
    for alias, target in sample.aliases:
        await pusher.tag(path, alias, digests[target])
        digests[alias] = digests[target]
    say(
        f"   pushed {sample.tag_count} tags to {registry.host}/{path} in "
        f"{time.monotonic() - began:.1f} s: releases, candidates, weeklies, dailies, "
        "experimentals, cycle and architecture tags, recommended and latest_* aliases"
    )
    return pusher, digests, registry.host


async def _ledger(
    stack: AsyncExitStack,
    workdir: Path,
    document: str,
    environment: dict[str, str],
    *,
    follow: bool,
) -> tuple[str, dict[str, str], Process]:
    name = unique_name("imageledger_demo")
    url = await stack.enter_async_context(database(name))
    stack.callback(say, f"== database {name} dropped")
    prefix = await stack.enter_async_context(broker_names(unique_name("imageledger-demo")))
    stack.callback(say, f"== RabbitMQ exchanges and queues {prefix}, {prefix}.* deleted")
    config_path = workdir / "config.yaml"
    config_path.write_text(document)
    port = free_port()
    env = {
        **os.environ,
        **environment,
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
    return url, env, worker


async def _cluster(
    stack: AsyncExitStack,
    workdir: Path,
    env: dict[str, str],
    nodes: int,
    images: dict[str, list[str]],
    *,
    short: bool,
) -> KubeCluster:
    port = free_port()
    cluster = await stack.enter_async_context(
        kube_cluster(workdir, env, port, nodes, images, short=short)
    )
    stack.callback(say, "== imageledger kube and the stand-in cluster stopped (SIGTERM)")
    say(
        f"== stand-in Kubernetes API server (python -m tests.support.kube): {nodes} nodes "
        f"labelled nublado=lab, node-{nodes} tainted nvidia.com/gpu=true:NoSchedule; simulated "
        "kubelets pull, and about one first attempt in five fails with ErrImagePull"
    )
    say(
        f"== imageledger kube: pid {cluster.bridge.process.pid}, kubeconfig "
        f"{workdir / 'kubeconfig'}, http://127.0.0.1:{port}/readyz ok; it reports the nodes "
        "and runs a prepull pod for each prepull.requested"
    )
    return cluster


def _initial_images(
    count: int, repository: str, digests: dict[str, str], sample: SampleRepository
) -> dict[str, list[str]]:
    """Some nodes already hold the recommended and an old weekly, as a live cluster would."""
    old = [tag for tag in sample.images if tag.startswith("w_")][-1]
    held = {f"node-{i}": [digests["recommended"], digests[old]] for i in (1, 2)}
    held[f"node-{count}"] = [digests[old]]
    return {node: [f"{repository}@{d}" for d in sorted(set(ds))] for node, ds in held.items()}
