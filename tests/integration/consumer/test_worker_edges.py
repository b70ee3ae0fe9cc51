"""Hostile values at the worker's edge (issue 12, faults 1 and 6): each is dead-lettered on its
first arrival, with the path of the bad field, before it reaches PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.rabbit import drain, publish_raw, queue_depth, wait_until
from tests.support.worker_process import rebuild_matches
from worker import factory
from worker.adapters.broker.connection import ATTEMPT_HEADER, REASON_HEADER, BrokerSettings
from worker.config import Config
from worker.consumer import Worker
from worker.converter import parse_config

REPO = "lsstsqre/sciplat-lab"
DIGEST = "sha256:" + "ab" * 32
IMAGE = f"reg.test/{REPO}:w_2077_43@{DIGEST}"


def make_config() -> Config:
    source = {"type": "docker", "registry": "127.0.0.1:9", "repository": REPO, "insecure": True}
    return parse_config({"images": {"source": source}, "prepull": {"planInterval": 60}})


@asynccontextmanager
async def running_worker(
    settings: BrokerSettings, url: str, config: Config | None = None
) -> AsyncIterator[factory.Runtime]:
    async with factory.runtime(config or make_config(), settings, url) as runtime:
        worker = Worker(runtime, schedule_refreshes=False)
        await worker.start()
        try:
            yield runtime
        finally:
            await worker.stop()


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def inventory(node: str = "node-a", at: datetime | None = None, **changes: Any) -> dict[str, Any]:
    body = {
        "node": node,
        "observed_at": (at or now() - timedelta(minutes=1)).isoformat(),
        "labels": {"kubernetes.io/hostname": node},
        "taints": [],
        "images": [{"names": [f"reg.test/{REPO}@{DIGEST}"], "sizeBytes": 1000}],
    }
    return {**body, **changes}


def completion(**changes: Any) -> dict[str, Any]:
    body = {
        "node": "node-a",
        "image": IMAGE,
        "pod": "prepull-a",
        "succeeded": True,
        "finished_at": (now() - timedelta(minutes=1)).isoformat(),
    }
    return {**body, **changes}


def encoded(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


FAR_FUTURE = "9999-01-01T00:00:00+00:00"
HOSTILE: list[tuple[str, str, bytes, str]] = [
    # (message id, routing key, body, what the reason must say, ending with the path)
    ("nul", "node.inventory", encoded(inventory(labels={"zone": "a\x00b"})),
     "contains a NUL character at offset 1 @ $.labels.zone"),
    ("surrogate", "node.inventory",
     encoded(inventory()).replace(b'"node": "node-a"', b'"node": "node-\\ud800"'),
     "contains an unpaired surrogate at offset 5 @ $.node"),
    ("size-int64", "node.inventory",
     encoded(inventory(images=[{"names": ["reg.test/x"], "sizeBytes": 2**63}])),
     "size 9223372036854775808 is out of range (0 to 2^63 - 1) @ $.images[0].sizeBytes"),
    ("size-negative", "node.inventory",
     encoded(inventory(images=[{"names": ["reg.test/x"], "sizeBytes": -5}])),
     "size -5 is out of range (0 to 2^63 - 1) @ $.images[0].sizeBytes"),
    ("long-node", "node.inventory", encoded(inventory(node="n" * 3000)),
     "must be at most 253 characters, got 3000 @ $.node"),
    ("node-name", "node.inventory", encoded(inventory(node="Node_A")),
     "is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and"
     " ending with a letter or digit) @ $.node"),
    ("long-label", "node.inventory", encoded(inventory(labels={"k" * 3000: "v"})),
     f"key name must be at most 63 characters, got 3000 @ $.labels['{'k' * 80}…']"),
    ("label-value", "node.inventory", encoded(inventory(labels={"zone": "a b"})),
     "value 'a b' is not a valid label value (letters, digits, '-', '_' and '.', starting and"
     " ending with a letter or digit) @ $.labels['zone']"),
    ("taint-effect", "node.inventory",
     encoded(inventory(taints=[{"key": "gpu", "effect": "Sometimes"}])),
     "effect 'Sometimes' is not one of NoSchedule, PreferNoSchedule, NoExecute"
     " @ $.taints[0].effect"),
    ("name-digest", "node.inventory",
     encoded(inventory(images=[{"names": ["reg.test/x@sha256:zz"], "sizeBytes": 1}])),
     "digest 'sha256:zz' is not sha256: and 64 lowercase hex digits (or sha512: and 128)"
     " @ $.images[0].names[0]"),
    ("future-inventory", "node.inventory", encoded(inventory(observed_at=FAR_FUTURE)),
     f"time {FAR_FUTURE} is more than 5m ahead of the worker's clock"),
    ("ancient-inventory", "node.inventory",
     encoded(inventory(observed_at="1970-01-01T00:00:00Z")),
     "time 1970-01-01T00:00:00+00:00 is before 2000-01-01 @ $.observed_at"),
    ("future-gone", "node.gone", encoded({"node": "node-a", "observed_at": FAR_FUTURE}),
     f"time {FAR_FUTURE} is more than 5m ahead of the worker's clock"),
    ("digest", "prepull.pod_completed",
     encoded(completion(image=f"reg.test/{REPO}:w_2077_43@sha256:zz")),
     "digest 'sha256:zz' is not sha256: and 64 lowercase hex digits (or sha512: and 128)"
     " @ $.image"),
    ("tag", "prepull.pod_completed",
     encoded(completion(image=f"reg.test/{REPO}:-bad@{DIGEST}")),
     f'Docker reference "reg.test/{REPO}:-bad@{DIGEST}" has an invalid tag @ $.image'),
    ("long-pod", "prepull.pod_completed", encoded(completion(pod="p" * 3000)),
     "must be at most 253 characters, got 3000 @ $.pod"),
    ("long-reason", "prepull.pod_completed",
     encoded(completion(succeeded=False, reason="r" * 5000)),
     "must be at most 2048 characters, got 5000 @ $.reason"),
    ("future-completion", "prepull.pod_completed", encoded(completion(finished_at=FAR_FUTURE)),
     f"time {FAR_FUTURE} is more than 5m ahead of the worker's clock"),
    ("future-refresh", "refresh.request", encoded({"requested_at": FAR_FUTURE}),
     f"time {FAR_FUTURE} is more than 5m ahead of the worker's clock"),
]  # fmt: skip
CLOCK_PATHS = {
    "future-inventory": "$.observed_at",
    "future-gone": "$.observed_at",
    "future-completion": "$.finished_at",
    "future-refresh": "$.requested_at",
}


async def _count(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one() or 0)


async def _nodes(engine: AsyncEngine, expected: int) -> bool:
    return await _count(engine, "SELECT count(*) FROM ledger.nodes") == expected


def _metric(runtime: factory.Runtime, name: str, queue: str) -> float:
    value = runtime.metrics.registry.get_sample_value(name, {"queue": queue})
    return value or 0.0


async def test_each_bad_value_is_dead_lettered_on_its_first_arrival_with_the_field_path(
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    exchange = broker_settings.prefix
    async with running_worker(broker_settings, database_url) as runtime:
        for message_id, key, body, _ in HOSTILE:
            await publish_raw(rabbit_connection, exchange, key, body, message_id=message_id)
        await publish_raw(
            rabbit_connection, exchange, "node.inventory", encoded(inventory("node-ok"))
        )
        dead = await drain(rabbit_connection, f"{exchange}.dead", len(HOSTILE), within=20)
        await wait_until(lambda: _nodes(engine, 1), what="the valid node")
        queues = ("pod_completed", "node_inventory", "refresh")
        retried = sum(
            _metric(runtime, "imageledger_messages_retried_total", f"{exchange}.{q}")
            for q in queues
        )
    reasons = {m.message_id: str((m.headers or {})[REASON_HEADER]) for m in dead}
    assert set(reasons) == {message_id for message_id, *_ in HOSTILE}
    for message_id, _, _, expected in HOSTILE:
        assert expected in reasons[message_id], (message_id, reasons[message_id])
        path = CLOCK_PATHS.get(message_id)
        if path is not None:
            assert reasons[message_id].endswith(f" @ {path}"), reasons[message_id]
    assert all(ATTEMPT_HEADER not in (m.headers or {}) for m in dead)  # first arrival
    assert retried == 0  # no trip through a delay queue
    assert [r[0] for r in await _rows(engine, "SELECT node FROM ledger.nodes")] == ["node-ok"]
    # Besides the policy the worker records as it starts, only the valid message's facts.
    sql = "SELECT DISTINCT type FROM ledger.events WHERE type <> 'policy.configured' ORDER BY 1"
    types = await _rows(engine, sql)
    assert [t[0] for t in types] == ["node.inventory_observed", "node.seen"]


async def test_a_body_that_is_not_json_by_its_content_type_is_dead_lettered(
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    exchange = broker_settings.prefix
    async with running_worker(broker_settings, database_url):
        async with rabbit_connection.channel() as channel:
            target = await channel.get_exchange(exchange)
            for message_id, content_type in (("plain", "text/plain"), ("none", None)):
                message = aio_pika.Message(
                    encoded(inventory(f"node-{message_id}")),
                    message_id=message_id,
                    content_type=content_type,
                )
                await target.publish(message, "node.inventory")
        dead = await drain(rabbit_connection, f"{exchange}.dead", 2)
    reasons = {m.message_id: str((m.headers or {})[REASON_HEADER]) for m in dead}
    assert reasons == {
        "plain": "content type must be application/json, got 'text/plain'",
        "none": "content type must be application/json, got none",
    }
    assert await _count(engine, "SELECT count(*) FROM ledger.nodes") == 0


async def test_a_far_future_inventory_cannot_freeze_a_node(
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    exchange = broker_settings.prefix
    taint = {"key": "frozen", "effect": "NoSchedule"}
    attack = inventory(observed_at=FAR_FUTURE, taints=[taint], labels={"pinned": "yes"})
    real = inventory(labels={"kubernetes.io/hostname": "node-a"})
    async with running_worker(broker_settings, database_url):
        await publish_raw(
            rabbit_connection, exchange, "node.inventory", encoded(attack), message_id="attack"
        )
        await drain(rabbit_connection, f"{exchange}.dead", 1)
        await publish_raw(
            rabbit_connection, exchange, "node.inventory", encoded(real), message_id="real"
        )
        await wait_until(lambda: _nodes(engine, 1), what="the node")
    sql = "SELECT eligible, labels, taints FROM ledger.nodes WHERE node = 'node-a'"
    (before,) = await _rows(engine, sql)
    assert (before.eligible, before.labels, before.taints) == (
        True,
        {"kubernetes.io/hostname": "node-a"},
        [],
    )
    assert await rebuild_matches(engine) == []
    assert await _rows(engine, sql) == [before]
    assert await queue_depth(rabbit_connection, f"{exchange}.dead") == 0


async def _rows(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(text(sql)))
