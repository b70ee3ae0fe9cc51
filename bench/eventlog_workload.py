"""A synthetic but production-shaped event stream for bench/eventlog.py.

A cluster of ``nodes`` nodes (2% ineligible) and a repository whose ``images`` newest images
are prepull targets. Each target image is first tagged, then reaches the nodes: half through
prepulls (requested, then succeeded, 5% failing once and retried, at most 100 in flight, as
the worker's planner throttles them), half through kubelet inventories that report it
(observed up to a minute out of order). Inventories also report other images coming and
going. Refresh summaries arrive along the way. After the last image only inventories of
other images follow. The stream stops after ``total`` events.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

from worker.domain.events import (
    CachedImage,
    Event,
    NodeInventoryObserved,
    NodeSeen,
    PolicyConfigured,
    PrepullFailed,
    PrepullRequested,
    PrepullSucceeded,
    RefreshCompleted,
    RequestCount,
    TagDiscovered,
)
from worker.domain.nodes import Taint
from worker.domain.policy import PrepullPolicy

__all__ = ["REGISTRY", "REPOSITORY", "T0", "digest", "node_name", "tag_name", "workload"]

REGISTRY = "registry.bench"
REPOSITORY = "lsst/sciplat-lab"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
"""The workload's clock starts here: in the past, with room for its months, so the fold
counts every time as it is (never past its recording: ``worker.domain.ledger.as_folded``)."""
IN_FLIGHT = 100


def digest(n: int) -> str:
    """The digest of image ``n`` (negative: images that are not in the repository)."""
    return f"sha256:{n & 0xFFFFFFFFFFFF:064x}" if n >= 0 else f"sha256:{'f' * 48}{-n:016x}"


def node_name(n: int) -> str:
    """The name of node ``n``."""
    return f"node-{n:05d}"


def tag_name(n: int) -> str:
    """The weekly tag of image ``n``."""
    return f"w_{2077 + n // 52}_{n % 52 + 1:02d}"


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def tick(self, seconds: float = 0.3) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def _setup(nodes: int, clock: _Clock, rng: random.Random) -> Iterator[Event]:
    yield PolicyConfigured(
        registry=REGISTRY,
        repository=REPOSITORY,
        prepull=PrepullPolicy(num_weeklies=100),
        occurred_at=clock.tick(),
    )
    for n in range(nodes):
        tainted = rng.random() < 0.02
        yield NodeSeen(
            node=node_name(n),
            labels={"pool": "lab", "zone": f"z{n % 3}"},
            taints=(Taint("gpu", "NoSchedule", "true"),) if tainted else (),
            eligible=not tainted,
            comment="Node is tainted (NoSchedule, gpu = true)" if tainted else None,
            occurred_at=clock.tick(0.01),
        )


def _release(image: int, refresh: int, clock: _Clock) -> Iterator[Event]:
    at = clock.tick()
    for n in (image, image + 1000):
        yield TagDiscovered(
            registry=REGISTRY, repository=REPOSITORY, tag=tag_name(n), digest=digest(n),
            occurred_at=at,
        )  # fmt: skip
    yield RefreshCompleted(
        registry=REGISTRY,
        repository=REPOSITORY,
        refresh_id=f"refresh-{refresh}",
        started_at=at - timedelta(seconds=2),
        tags_total=2 * (image + 1),
        discovered=2,
        requests=(RequestCount("GET", 200, 1), RequestCount("HEAD", 200, 7)),
        duration_seconds=2.0,
        occurred_at=at,
    )


def _prepulls(image: int, nodes: list[str], clock: _Clock, rng: random.Random) -> Iterator[Event]:
    common = {"registry": REGISTRY, "repository": REPOSITORY, "digest": digest(image)}
    waiting: deque[tuple[str, int]] = deque((n, 1) for n in nodes)
    flying: deque[tuple[str, int]] = deque()
    while waiting or flying:
        while waiting and len(flying) < IN_FLIGHT:
            node, attempt = waiting.popleft()
            at = clock.tick()
            yield PrepullRequested(
                tag=tag_name(image),
                node=node,
                attempt=attempt,
                deadline=at + timedelta(minutes=10),
                occurred_at=at,
                **common,
            )
            flying.append((node, attempt))
        node, attempt = flying.popleft()
        if attempt == 1 and rng.random() < 0.05:
            yield PrepullFailed(
                node=node, reason="ErrImagePull", occurred_at=clock.tick(), **common
            )
            waiting.append((node, 2))
        else:
            yield PrepullSucceeded(
                tag=tag_name(image),
                node=node,
                pod=f"prepull-{node}",
                occurred_at=clock.tick(),
                **common,
            )


def _inventory(node: str, image: int | None, clock: _Clock, rng: random.Random) -> Event:
    other = -rng.randrange(1, 30)
    appeared = [CachedImage(digest(other), rng.randrange(10**8, 10**9))]
    if image is not None:
        appeared.append(CachedImage(digest(image), 4 * 10**9))
    return NodeInventoryObserved(
        node=node,
        appeared=tuple(appeared),
        disappeared=(digest(other - 1),) if rng.random() < 0.5 else (),
        truncated=rng.random() < 0.1,
        image_count=rng.randrange(20, 51),
        occurred_at=clock.tick() - timedelta(seconds=rng.uniform(0, 60)),
    )


def workload(total: int, *, nodes: int = 5000, images: int = 100, seed: int = 7) -> Iterator[Event]:
    """At most ``total`` events, in arrival order."""
    rng = random.Random(seed)
    clock = _Clock()
    names = [node_name(n) for n in range(nodes)]

    def stream() -> Iterator[Event]:
        yield from _setup(nodes, clock, rng)
        for image in range(images):
            yield from _release(image, image, clock)
            order = names[:]
            rng.shuffle(order)
            half = len(order) // 2
            pulls = _prepulls(image, order[:half], clock, rng)
            for i, event in enumerate(pulls):
                yield event
                if i % 2 == 0 and half + i // 2 < len(order):
                    yield _inventory(order[half + i // 2], image, clock, rng)
                if i % 3 == 0:
                    yield _inventory(rng.choice(names), None, clock, rng)
        while True:
            yield _inventory(rng.choice(names), None, clock, rng)

    yield from islice(stream(), total)
