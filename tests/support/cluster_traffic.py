"""Traffic for the cluster scenario: stable messages, a paced confirmed publisher, timelines."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
from attrs import define, field, frozen

from tests.support.worker_process import pod_completions
from worker.adapters.broker import Broker, BrokerError
from worker.converter import decode_message, encode_message
from worker.domain.events import NodeInventoryObserved, NodeSeen, PrepullFailed, PrepullSucceeded
from worker.domain.messages import NodeInventory, PodCompleted
from worker.domain.nodes import KubeletImage

__all__ = [
    "Outgoing",
    "PacedPublisher",
    "Timeline",
    "failover_times",
    "first_fold_after",
    "fold_rate",
    "lag_figures",
    "pause_figures",
    "sample_folds",
    "sample_worker",
    "traffic",
    "worker_counters",
]

T0 = datetime.now(UTC) - timedelta(hours=1)
"""The observations' times: in the past, as a worker admits them (queue.maxClockSkew)."""
_STAMP = re.compile(r"^timestamp=(\S+)")
_METRIC = re.compile(r"^(imageledger_[a-z_]+_total)\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)


@frozen
class Outgoing:
    """One message to publish: routing key, stable message id, body, and the event types
    folding it must append (its effect in the ledger)."""

    routing_key: str
    message_id: str
    body: bytes
    effect: tuple[str, ...]


def _inventory(i: int) -> Outgoing:
    """The first inventory of node ``inv-node-<i>`` (a node of its own, so whatever the
    order two workers fold in, it appends exactly NodeSeen and NodeInventoryObserved)."""
    digests = [hashlib.sha256(f"layer-{i}-{k}".encode()).hexdigest() for k in range(3)]
    images = tuple(
        KubeletImage((f"reg.test/lsstsqre/sciplat-lab@sha256:{d}",), 1_000_000 + k)
        for k, d in enumerate(digests)
    )
    message = NodeInventory(
        node=f"inv-node-{i:06d}", observed_at=T0 + timedelta(seconds=i), images=images
    )
    effect = tuple(sorted((NodeSeen.TYPE, NodeInventoryObserved.TYPE)))
    return Outgoing(NodeInventory.ROUTING_KEY, f"inv-{i:06d}", encode_message(message), effect)


def traffic(count: int, inventory_every: int = 4) -> list[Outgoing]:
    """``count`` messages, every ``inventory_every``-th a node inventory, the others pod
    completions (successes and failures mixed, several per image and node)."""
    inventories = count // inventory_every if inventory_every else 0
    completions = iter(pod_completions(count - inventories))
    out: list[Outgoing] = []
    for i in range(count):
        if inventory_every and i % inventory_every == inventory_every - 1:
            out.append(_inventory(i // inventory_every))
            continue
        message_id, body = next(completions)
        completed = decode_message(PodCompleted.ROUTING_KEY, body)
        assert isinstance(completed, PodCompleted)
        kind = PrepullSucceeded.TYPE if completed.succeeded else PrepullFailed.TYPE
        out.append(Outgoing(PodCompleted.ROUTING_KEY, message_id, body, (kind,)))
    return out


@define
class PacedPublisher:
    """Publishes through a ``Broker`` (publisher confirms) at ``rate`` messages a second,
    in windows of a tenth of a second; a publish that is not confirmed (connection lost,
    refused) is published again, with the same message id, until it is."""

    broker: Broker
    rate: float
    published: int = 0
    republished: int = 0
    longest_wait: float = 0.0
    on_progress: Callable[[int], None] | None = None
    sent: dict[str, float] = field(factory=dict)
    """Message id -> when it was first sent (epoch seconds)."""

    async def run(self, messages: Sequence[Outgoing]) -> None:
        """Publish every message once confirmed; returns when all are."""
        window = max(1, round(self.rate / 10))
        started = time.monotonic()
        for start in range(0, len(messages), window):
            due = started + start / self.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await self._confirm(messages[start : start + window])
            self.published = start + len(messages[start : start + window])
            if self.on_progress is not None:
                self.on_progress(self.published)

    async def _confirm(self, batch: Sequence[Outgoing]) -> None:
        now = time.time()
        self.sent.update((m.message_id, now) for m in batch)
        pending = list(batch)
        while pending:
            began = time.monotonic()
            results = await asyncio.gather(
                *(
                    self.broker.publish(m.routing_key, m.body, message_id=m.message_id)
                    for m in pending
                ),
                return_exceptions=True,
            )
            self.longest_wait = max(self.longest_wait, time.monotonic() - began)
            failed = [m for m, r in zip(pending, results, strict=True) if r is not None]
            for result in results:
                if result is not None and not isinstance(result, BrokerError):
                    raise result
            if failed:
                self.republished += len(failed)
                await asyncio.sleep(0.2)
            pending = failed


Timeline = list[tuple[float, float]]
"""(monotonic time, a counter that grows with every fold) samples."""


async def sample_folds(
    database_url: str, timeline: Timeline, stop: asyncio.Event, outages: list[float]
) -> None:
    """The log's head position every 50 ms (an index lookup, not a scan). While PostgreSQL
    cannot be reached (other test suites on this machine stop it on purpose), it keeps
    trying and appends each failed sample's time to ``outages``: a run with outages
    measured PostgreSQL too, not only the broker."""
    db: asyncpg.Connection | None = None
    while not stop.is_set():
        try:
            db = db or await asyncpg.connect(database_url)
            head = await db.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events")
            timeline.append((time.monotonic(), float(head)))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            outages.append(time.monotonic())
            if db is not None:
                db.terminate()
            db = None
        await asyncio.sleep(0.05)
    if db is not None:
        await db.close()


async def worker_counters(http: aiohttp.ClientSession, port: int) -> dict[str, float]:
    """A worker's ``/metrics`` counters, summed over their labels."""
    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    totals: dict[str, float] = {}
    for name, value in _METRIC.findall(text):
        totals[name] = totals.get(name, 0.0) + float(value)
    return totals


async def sample_worker(port: int, timeline: Timeline, stop: asyncio.Event) -> None:
    """Events a worker appended so far, every 100 ms (from its ``/metrics``)."""
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            try:
                counters = await worker_counters(http, port)
            except aiohttp.ClientError:
                counters = None
            if counters is not None:
                appended = counters.get("imageledger_events_appended_total", 0.0)
                timeline.append((time.monotonic(), appended))
            await asyncio.sleep(0.1)


def pause_figures(timeline: Timeline, stopped_at: float) -> dict[str, float | None]:
    """From the node's stop: the next fold, and the longest pause between two folds
    (counted from the last fold before the stop)."""
    folds = [t for (t, value), (_, before) in zip(timeline[1:], timeline, strict=False)
             if value > before]  # fmt: skip
    after = [t for t in folds if t > stopped_at]
    if not after:
        return {"first_fold_s": None, "longest_pause_s": None}
    previous = max((t for t in folds if t <= stopped_at), default=stopped_at)
    longest = max(t - p for t, p in zip(after, [previous, *after], strict=False))
    return {"first_fold_s": round(after[0] - stopped_at, 3), "longest_pause_s": round(longest, 3)}


def first_fold_after(timeline: Timeline, moment: float) -> float | None:
    """When the counter first grew after ``moment`` (None: never)."""
    pairs = zip(timeline[1:], timeline, strict=False)
    return next((t for (t, value), (_, before) in pairs if t > moment and value > before), None)


def failover_times(log: str, after: float) -> tuple[float | None, float | None]:
    """When a worker's log says it lost its connection (the first time after ``after``) and
    when it was connected again (epoch seconds; None, None: it lost none)."""
    lost = None
    for line in log.splitlines():
        entry = _log_entry(line)
        if entry is None:
            continue
        at, event = entry
        if lost is None and at >= after and "the next attempt goes to the next node" in event:
            lost = at
        elif lost is not None and event == "broker connected":
            return lost, at
    return lost, None


def _log_entry(line: str) -> tuple[float, str] | None:
    """(epoch seconds, event) of a worker's log line, JSON (the default off a terminal) or
    logfmt; None for anything else."""
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return None
        stamp, event = record.get("timestamp"), record.get("event")
        if not isinstance(stamp, str) or not isinstance(event, str):
            return None
        return datetime.fromisoformat(stamp).timestamp(), event
    found = _STAMP.search(line)
    if found is None:
        return None
    named = re.search(r'event="([^"]*)"|event=(\S+)', line)
    event = (named[1] or named[2]) if named else line
    return datetime.fromisoformat(found[1]).timestamp(), event


def _quantile(values: Sequence[float], share: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 3) if ordered else None


def lag_figures(
    sent: dict[str, float], folded: dict[str, float], stopped_at: float
) -> dict[str, float | None]:
    """Publish-to-fold lag (epoch seconds in, seconds out): the median of the messages
    sent before the stop (the steady state), the median, 99th percentile and worst of all,
    and how long after the stop the last message sent before it was folded."""
    lags = [folded[m] - sent[m] for m in sent if m in folded]
    before = {m: folded[m] for m, at in sent.items() if at < stopped_at and m in folded}
    return {
        "lag_p50_before_stop_s": _quantile([folded[m] - sent[m] for m in before], 0.5),
        "lag_p50_s": _quantile(lags, 0.5),
        "lag_p99_s": _quantile(lags, 0.99),
        "lag_max_s": round(max(lags), 3) if lags else None,
        "in_flight_folded_s": round(max(before.values()) - stopped_at, 3) if before else None,
    }


def fold_rate(
    timeline: Timeline, stopped_at: float, before: float = 2.0, after: float = 8.0
) -> list[tuple[float, float]]:
    """Folding around the stop: (seconds from the stop, events appended in the next half
    second), from ``before`` seconds before it to ``after`` seconds after."""
    out: list[tuple[float, float]] = []
    start = -before
    while start < after:
        window = [v for t, v in timeline if start <= t - stopped_at < start + 0.5]
        earlier = [v for t, v in timeline if t - stopped_at < start]
        if window and earlier:
            out.append((start, window[-1] - earlier[-1]))
        start += 0.5
    return out
