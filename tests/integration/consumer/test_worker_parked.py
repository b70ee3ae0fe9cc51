"""A parked pair has one state everywhere: a failure that arrives after parking (a late pod
report) leaves it parked, with the last real failure reason, in the views, in
``imageledger explain`` and for ``imageledger unpark``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import aiohttp
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.consumer.test_worker import REPO, T0, rows, running_worker
from tests.integration.consumer.test_worker_unpark import node_a, pair_state, parking_config
from tests.support.launcher import launcher
from tests.support.rabbit import publish_raw, wait_until
from tests.support.registry import RunningRegistry
from worker.adapters.broker import BrokerSettings
from worker.adapters.ledger import EventLog, ExplainStore, UnparkStore
from worker.domain.explain import ImageQuery
from worker.services.explain import explain_image
from worker.services.prepull import prepull_settings
from worker.services.unpark import unpark


def late_failure(registry: str, digest: str) -> bytes:
    body = {
        "node": "node-a",
        "image": f"{registry}/{REPO}:w_2077_43@{digest}",
        "pod": "prepull-late",
        "succeeded": False,
        "finished_at": (T0 + timedelta(minutes=5)).isoformat(),
        "reason": "ImagePullBackOff",
    }
    return json.dumps(body).encode()


async def test_a_failure_after_parking_leaves_the_pair_parked_everywhere(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    weekly = await registry.pusher(registry_session).push_image(
        REPO, ["w_2077_43", "recommended"], variant="w43"
    )
    config = parking_config(registry.host, max_attempts=2, max_backoff=0.2)
    exchange = broker_settings.prefix
    async with (
        running_worker(config, broker_settings, database_url),
        launcher(rabbit_connection, exchange, set(), fail_always=frozenset({("node-a", weekly)})),
    ):
        labels = {"kubernetes.io/hostname": "node-a"}
        await publish_raw(rabbit_connection, exchange, "node.inventory", node_a(labels, 0))
        await publish_raw(rabbit_connection, exchange, "refresh.request", b"{}", message_id="r1")

        async def parked() -> bool:
            return await pair_state(engine, weekly) == ("parked", False)

        await wait_until(parked, within=30, what="the failing pair parked")
        late = late_failure(registry.host, weekly)
        await publish_raw(rabbit_connection, exchange, "prepull.pod_completed", late)

        async def folded() -> bool:
            sql = "SELECT count(*) AS n FROM ledger.events WHERE type = 'prepull.failed'"
            return bool((await rows(engine, sql))[0].n == 3)

        await wait_until(folded, within=20, what="the late failure folded")

    queue = await rows(
        engine,
        "SELECT status, consecutive_failures, reason FROM dashboard.prepull_queue"
        " WHERE node = 'node-a'",
    )
    assert [(q.status, q.reason) for q in queue] == [("parked", "ImagePullBackOff")]
    answer = await explain_image(
        ExplainStore(engine),
        ImageQuery(digest=weekly),
        "node-a",
        datetime.now(UTC),
        prepull_settings(config),
    )
    texts = [f.text for f in answer.findings]
    assert answer.verdict == "parked"
    assert not any(t.startswith("next retry") for t in texts), texts
    assert any(t.startswith("parked: ImagePullBackOff") for t in texts), texts
    report = await unpark(UnparkStore(EventLog(engine)), [weekly], "node-a", "test", T0)
    assert [(p.node, p.digest) for p in report.pairs] == [("node-a", weekly)]
