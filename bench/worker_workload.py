"""The worker benchmark's workload: a repository, a cluster's inventories, pod completions.

A repository of 30 weeklies (``recommended`` on the newest) whose prepull set is the 10
newest; ``nodes`` nodes labelled for the lab (2% carry a taint the lab does not tolerate, so
they are not eligible), each reporting 30 images of its own besides the prepull targets it
holds: the two newest targets are on no node yet and the third newest is missing on a
tenth of the nodes, so planning has pairs to request. The pod completions answer those
missing pairs in the order the planner requests them (target, then node), cycling when there
are fewer pairs than messages; every 20th is a failure. With no nodes, the completions name
500 nodes the ledger has never seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from itertools import cycle, islice
from typing import Any

import aiohttp

from tests.support.registry import RunningRegistry
from worker.converter import encode_message
from worker.domain.messages import NodeInventory, PodCompleted, RefreshRequested
from worker.domain.nodes import KubeletImage, Taint
from worker.domain.references import DockerReference

__all__ = [
    "PREPULL",
    "REPOSITORY",
    "Message",
    "completions",
    "eligible",
    "inventories",
    "missing_pairs",
    "push_repository",
    "refresh_request",
    "worker_config",
]

Message = tuple[str, bytes]
"""(message id, JSON body), as published."""

REPOSITORY = "bench/sciplat-lab"
WEEKLIES = 30
PREPULL = 10
"""The prepull set: the newest weeklies."""
OWN_IMAGES = 30
"""Images each node reports besides the prepull targets (kubelet lists at most 50)."""
SELECTOR = {"pool": "lab"}
UNTOLERATED = Taint("nvidia.com/gpu", "NoSchedule", "true")


def _weekly(n: int) -> str:
    return f"w_2077_{n:02d}"


async def push_repository(registry: RunningRegistry, session: aiohttp.ClientSession) -> list[str]:
    """Push the weeklies (one image each) and ``recommended``; returns the prepull targets'
    digests in pull order (newest first)."""
    pusher = registry.pusher(session)
    tags = [_weekly(n) for n in range(1, WEEKLIES + 1)]
    digests = await pusher.push_tags(REPOSITORY, tags)
    await pusher.tag(REPOSITORY, "recommended", digests[tags[-1]])
    return [digests[t] for t in reversed(tags[-PREPULL:])]


def worker_config(registry: str, queue: Mapping[str, Any]) -> dict[str, Any]:
    """The worker's configuration: the repository, the prepull set, the lab's selector."""
    source = {"type": "docker", "registry": registry, "repository": REPOSITORY, "insecure": True}
    images = {"source": source, "numWeeklies": PREPULL, "numReleases": 0, "numDailies": 0}
    return {"images": images, "lab": {"nodeSelector": SELECTOR}, "queue": dict(queue)}


def _node(n: int) -> str:
    return f"node-{n:05d}"


def eligible(n: int) -> bool:
    """Whether node ``n`` is eligible (2% are tainted)."""
    return n % 50 != 49


def _holds(n: int, target: int) -> bool:
    """Whether node ``n`` already holds the ``target``-th prepull target (pull order)."""
    return target >= 3 or (target == 2 and n % 10 != 3)


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def refresh_request() -> Message:
    """The ``refresh.request`` that makes the worker read the repository."""
    return "bench-refresh", encode_message(RefreshRequested(reason="benchmark set-up"))


def inventories(nodes: int, registry: str, targets: Sequence[str], at: datetime) -> list[Message]:
    """One ``node.inventory`` per node."""
    out: list[Message] = []
    for n in range(nodes):
        digests = [d for t, d in enumerate(targets) if _holds(n, t)]
        digests += [_digest(f"own-{(7 * n + k) % 400}") for k in range(OWN_IMAGES)]
        message = NodeInventory(
            node=_node(n),
            observed_at=at,
            labels={**SELECTOR, "kubernetes.io/hostname": _node(n)},
            taints=() if eligible(n) else (UNTOLERATED,),
            images=tuple(
                KubeletImage((f"{registry}/{REPOSITORY}@{d}",), 2 * 10**9 + i)
                for i, d in enumerate(digests)
            ),
        )
        out.append((f"bench-inventory-{n:05d}", encode_message(message)))
    return out


def missing_pairs(nodes: int, targets: Sequence[str]) -> list[tuple[str, int]]:
    """(node, target index) of every eligible node lacking a target, in the planner's
    order (target, then node); with no nodes, 500 unknown nodes and the two newest targets."""
    if nodes == 0:
        return [(_node(n), t) for t in range(2) for n in range(500)]
    return [
        (_node(n), t)
        for t in range(len(targets))
        for n in range(nodes)
        if eligible(n) and not _holds(n, t)
    ]


def completions(
    count: int, pairs: Sequence[tuple[str, int]], registry: str, targets: Sequence[str],
    start: datetime,
) -> list[Message]:  # fmt: skip
    """``count`` ``prepull.pod_completed`` messages over ``pairs`` (cycled); every 20th fails."""
    out: list[Message] = []
    for i, (node, target) in enumerate(islice(cycle(pairs), count)):
        failed = i % 20 == 19
        tag = _weekly(WEEKLIES - target)
        message = PodCompleted(
            node=node,
            image=DockerReference(registry, REPOSITORY, tag, targets[target]),
            pod=f"prepull-{i}",
            succeeded=not failed,
            finished_at=start + timedelta(milliseconds=i),
            reason="ErrImagePull: benchmark" if failed else None,
        )
        out.append((f"bench-completion-{i:07d}", encode_message(message)))
    return out
