"""One message id, one effect (issue 12, fault 7): a publisher's retry adds nothing, and a
second body under a known id is dead-lettered on its first arrival, whichever the batch."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.consumer.test_worker_edges import running_worker
from tests.support.rabbit import drain, publish_raw, queue_depth, wait_until
from worker.adapters.broker.connection import ATTEMPT_HEADER, REASON_HEADER, BrokerSettings

REPO = "lsstsqre/sciplat-lab"
DIGEST = "sha256:" + "cd" * 32
AT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def completion(node: str, succeeded: bool) -> bytes:
    body: dict[str, Any] = {
        "node": node,
        "image": f"reg.test/{REPO}:w_2077_43@{DIGEST}",
        "pod": f"prepull-{node}",
        "succeeded": succeeded,
        "finished_at": AT.isoformat(),
    }
    if not succeeded:
        body["reason"] = "ImagePullBackOff"
    return json.dumps(body).encode()


async def _rows(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(text(sql)))


async def _events(engine: AsyncEngine) -> list[tuple[str, str]]:
    rows = await _rows(
        engine,
        "SELECT causation, type FROM ledger.events WHERE type LIKE 'prepull.%' ORDER BY position",
    )
    return [(r.causation, r.type) for r in rows]


async def test_a_second_body_under_a_known_id_is_dead_lettered_and_has_no_effect(
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    exchange = broker_settings.prefix
    key = "prepull.pod_completed"
    failed, succeeded = completion("node-a", False), completion("node-a", True)
    async with running_worker(broker_settings, database_url):
        # across batches: the failure is folded first, then the success arrives under its id
        await publish_raw(rabbit_connection, exchange, key, failed, message_id="across")

        async def folded() -> bool:
            return len(await _events(engine)) == 1

        await wait_until(folded, what="the first body folded")
        await publish_raw(rabbit_connection, exchange, key, succeeded, message_id="across")
        # in one batch: both bodies published back to back
        await publish_raw(
            rabbit_connection, exchange, key, completion("node-b", True), message_id="within"
        )
        await publish_raw(
            rabbit_connection, exchange, key, completion("node-b", False), message_id="within"
        )
        # across queues: an inventory under an id a completion used
        inventory = {"node": "node-c", "observed_at": AT.isoformat()}
        await publish_raw(
            rabbit_connection,
            exchange,
            "node.inventory",
            json.dumps(inventory).encode(),
            message_id="across",
        )
        dead = await drain(rabbit_connection, f"{exchange}.dead", 3)

        async def both() -> bool:
            return len(await _events(engine)) == 2

        await wait_until(both, what="the second id folded")
    assert await _events(engine) == [("across", "prepull.failed"), ("within", "prepull.succeeded")]
    assert sorted((str(m.message_id), str(m.routing_key)) for m in dead) == [
        ("across", "node.inventory"),
        ("across", "prepull.pod_completed"),
        ("within", "prepull.pod_completed"),
    ]
    dead_bodies = {(m.message_id, m.routing_key): m.body for m in dead}
    assert dead_bodies["across", "prepull.pod_completed"] == succeeded
    assert dead_bodies["within", "prepull.pod_completed"] == completion("node-b", False)
    for message in dead:
        headers = message.headers or {}
        assert headers[REASON_HEADER] == "message id reused with a different body"
        assert ATTEMPT_HEADER not in headers  # the first arrival
    assert await _rows(engine, "SELECT node FROM ledger.nodes") == []
    recorded = await _rows(
        engine, "SELECT message_id, body_sha256, routing_key FROM ledger.messages ORDER BY 1"
    )
    assert [tuple(r) for r in recorded] == [
        ("across", hashlib.sha256(failed).hexdigest(), key),
        ("within", hashlib.sha256(completion("node-b", True)).hexdigest(), key),
    ]


async def test_a_publishers_retry_with_the_same_id_and_body_adds_nothing(
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    exchange = broker_settings.prefix
    key = "prepull.pod_completed"
    body = completion("node-a", True)
    async with running_worker(broker_settings, database_url) as runtime:
        for _ in range(3):
            await publish_raw(rabbit_connection, exchange, key, body, message_id="retry")

        async def consumed() -> bool:
            value = runtime.metrics.registry.get_sample_value(
                "imageledger_messages_consumed_total",
                {"queue": "pod_completed"},  # no prefix
            )
            return value == 3

        await wait_until(consumed, what="three deliveries")
    assert await _events(engine) == [("retry", "prepull.succeeded")]
    assert await queue_depth(rabbit_connection, f"{exchange}.dead") == 0
    assert len(await _rows(engine, "SELECT * FROM ledger.messages")) == 1
