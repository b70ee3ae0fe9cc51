"""Fixtures for the Kubernetes bridge: a stand-in API server, a client, a message sink."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.bridge import MemoryBroker
from tests.support.kube import KubeletTiming, KubeStandIn, kube_standin
from worker.adapters.kube import KubeConnection, connect
from worker.domain.messages import PrepullRequestedMessage
from worker.domain.references import DockerReference
from worker.services.kube import Backoff

NAMESPACE = "imageledger"
REPOSITORY = "registry.example.org/sqre/sciplat-lab"
DIGEST = "sha256:" + "5f0c" * 16
OTHER_DIGEST = "sha256:" + "a1b2" * 16
FAST = KubeletTiming(start_seconds=0.02, pull_seconds=0.2, run_seconds=0.05, backoff_seconds=0.4)
QUICK_BACKOFF = Backoff(initial=timedelta(seconds=0.1), maximum=timedelta(seconds=0.4))


def now() -> datetime:
    """The bridge's clock in these tests: the real time."""
    return datetime.now(tz=UTC)


def request(
    node: str,
    digest: str = DIGEST,
    *,
    tag: str = "w_2077_01",
    attempt: int = 1,
    seconds: float = 60.0,
) -> PrepullRequestedMessage:
    """A ``prepull.requested`` of ``tag`` at ``digest`` on ``node``, due in ``seconds``."""
    return PrepullRequestedMessage(
        image=DockerReference.parse(f"{REPOSITORY}:{tag}@{digest}"),
        tag=tag,
        digest=digest,
        node=node,
        attempt=attempt,
        deadline=now() + timedelta(seconds=seconds),
    )


def pinned(digest: str = DIGEST) -> str:
    """The image name a prepull pod pulls (and the kubelet then reports)."""
    return f"{REPOSITORY}@{digest}"


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[KubeStandIn]:
    """A stand-in cluster (TLS, least-privilege token) with fast kubelets."""
    async with kube_standin(tmp_path, namespace=NAMESPACE, timing=FAST, bookmark_seconds=0.3) as k:
        yield k


@pytest.fixture
async def connection(kube: KubeStandIn) -> AsyncIterator[KubeConnection]:
    """The real client, configured from the stand-in's kubeconfig; watches last 3 s."""
    async with connect(kube.kubeconfig, request_seconds=5.0, watch_seconds=3) as conn:
        yield conn


@pytest.fixture
def broker() -> MemoryBroker:
    """Where the bridge publishes."""
    return MemoryBroker()
