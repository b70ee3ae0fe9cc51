"""A 5,000-node ledger (the event log benchmark's cluster size) for timing dashboard queries.

Ten weekly images ``w_2077_01`` … ``w_2077_10`` are the prepull targets (``recommended``
moved to each as it came out, one day apart). Node ``i`` is ``node-iiiii``; every 50th
(``i % 50 == 49``) is tainted, the last 20 have left. Every node holds weeklies 1 to 8;
``w_2077_09`` is missing where ``i % 10 == 0``; ``w_2077_10`` where ``i`` is odd, and there
the prepull is in flight (``i % 10 == 1``), failed once (``i % 10 == 3``), parked after
3 failures (``i % 100 == 5``) or not asked yet. 96 refreshes ran every 15 minutes before
``NOW``, every 12th failed. The log is appended through the event log, so projections
are what the worker would fold.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.derived import store_derived
from worker.adapters.ledger import EventLog
from worker.domain.events import (
    CachedImage,
    Event,
    NodeGone,
    NodeInventoryObserved,
    NodeSeen,
    PolicyConfigured,
    PrepullFailed,
    PrepullParked,
    PrepullRequested,
    RefreshCompleted,
    RefreshFailed,
    RequestCount,
    TagDiscovered,
    TagMoved,
)
from worker.domain.images import Repository
from worker.domain.nodes import Taint
from worker.domain.policy import PrepullPolicy

__all__ = ["NODES", "NOW", "REPO", "TAGS", "digest", "fill", "node_name", "released"]

NODES = 5000
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
"""An hour or two ago: every time of the ledger is at or before it, so before its events are
recorded, and the fold counts them as they are (``worker.domain.ledger.as_folded``)."""
REPO = Repository("registry.example.org", "lsst/sciplat-lab")
SOURCE: dict[str, Any] = {"registry": REPO.registry, "repository": REPO.repository}
WEEKLIES = [f"w_2077_{n:02d}" for n in range(1, 11)]
POLICY = PrepullPolicy(num_weeklies=10, num_dailies=0, num_releases=0)
TAINT = Taint("gpu", "NoSchedule", "true")
TAINTED = "Node is tainted (NoSchedule, gpu = true)"


def digest(n: int) -> str:
    """The digest of weekly ``n`` (1 to 10)."""
    return f"sha256:{n:064x}"


def node_name(i: int) -> str:
    """The name of node ``i``."""
    return f"node-{i:05d}"


TAGS: dict[str, str | None] = {t: digest(n) for n, t in enumerate(WEEKLIES, 1)}
TAGS["recommended"] = digest(10)


def released(n: int) -> datetime:
    """When weekly ``n`` appeared: one day apart, the last 10 days before ``NOW``."""
    return NOW - timedelta(days=11 - n)


def _tags() -> Iterator[Event]:
    yield PolicyConfigured(prepull=POLICY, occurred_at=released(1), **SOURCE)
    for n, tag in enumerate(WEEKLIES, 1):
        yield TagDiscovered(tag=tag, digest=digest(n), occurred_at=released(n), **SOURCE)
        if n == 1:
            yield TagDiscovered(tag="recommended", digest=digest(1), occurred_at=released(1),
                                **SOURCE)  # fmt: skip
        else:
            yield TagMoved(tag="recommended", old_digest=digest(n - 1), new_digest=digest(n),
                           occurred_at=released(n), **SOURCE)  # fmt: skip


def _nodes() -> Iterator[Event]:
    for i in range(NODES):
        tainted = i % 50 == 49
        yield NodeSeen(node=node_name(i), labels={"pool": "lab"}, eligible=not tainted,
                       taints=(TAINT,) if tainted else (), comment=TAINTED if tainted else None,
                       occurred_at=released(1))  # fmt: skip
    for i in range(NODES):
        held = list(range(1, 9))
        held += [9] if i % 10 else []
        held += [] if i % 2 else [10]
        yield NodeInventoryObserved(
            node=node_name(i),
            appeared=tuple(CachedImage(digest(n), 4 * 10**9) for n in held),
            image_count=len(held),
            occurred_at=NOW - timedelta(hours=2, seconds=i),
        )
    for i in range(NODES - 20, NODES):
        yield NodeGone(node=node_name(i), occurred_at=NOW - timedelta(hours=1))


def _prepulls() -> Iterator[Event]:
    pair = {"tag": WEEKLIES[-1], "digest": digest(10), **SOURCE}
    at = NOW - timedelta(minutes=30)
    for i in range(1, NODES - 20, 2):
        node = node_name(i)
        if i % 50 == 49:
            continue
        if i % 100 == 5:
            for attempt in (1, 2, 3):
                yield PrepullRequested(node=node, attempt=attempt, occurred_at=at, **pair)
                yield PrepullFailed(node=node, reason="ErrImagePull: no space left on device",
                                    occurred_at=at, **pair)  # fmt: skip
            yield PrepullParked(node=node, failures=3, reason="3 consecutive failures",
                                occurred_at=at, digest=digest(10), **SOURCE)  # fmt: skip
        elif i % 10 in (1, 3):
            yield PrepullRequested(node=node, deadline=at + timedelta(minutes=10),
                                   occurred_at=at, **pair)  # fmt: skip
            if i % 10 == 3:
                yield PrepullFailed(node=node, reason="pod timed out", occurred_at=at, **pair)


def _refreshes() -> Iterator[Event]:
    for r in range(96):
        started = NOW - timedelta(minutes=15 * (96 - r))
        common: dict[str, Any] = {"refresh_id": f"r{r}", "started_at": started, **SOURCE}
        if r % 12 == 11:
            yield RefreshFailed(reason="GET tags/list: 503 Service Unavailable",
                                requests=(RequestCount("GET", 503, 4),), retries=3,
                                duration_seconds=9.5, occurred_at=started, **common)  # fmt: skip
        else:
            yield RefreshCompleted(tags_total=11, requests=(RequestCount("GET", 200, 1),
                                   RequestCount("HEAD", 200, 11)), duration_seconds=1.25,
                                   bytes_received=4096, occurred_at=started, **common)  # fmt: skip


def events() -> list[Event]:
    """The whole log, in order."""
    return [*_tags(), *_nodes(), *_prepulls(), *_refreshes()]


async def fill(log: EventLog) -> int:
    """Append the log in batches and store the derived rows; returns the events appended."""
    everything = events()
    for start in range(0, len(everything), 2000):
        await log.append(everything[start : start + 2000])
    await store_derived(log, REPO, TAGS, POLICY, [], NOW)
    return len(everything)
