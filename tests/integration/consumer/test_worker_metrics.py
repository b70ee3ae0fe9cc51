"""A live worker's ``/metrics`` after real traffic: the on-call figures, and ``promtool``'s lint."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aio_pika.abc import AbstractRobustConnection
from attrs import evolve
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.consumer.test_worker import (
    REPO,
    inventory,
    make_config,
    push_repository,
    rows,
    running_worker,
)
from tests.support.rabbit import publish_raw, wait_until
from tests.support.registry import RunningRegistry
from worker import factory
from worker.adapters.broker.connection import BrokerSettings
from worker.converter import encode_message, parse_config
from worker.domain.messages import PodCompleted
from worker.domain.references import DockerReference
from worker.web import serve

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

LEDGER_FAMILIES = (
    "imageledger_refresh_last_success_timestamp_seconds",
    "imageledger_prepull_target_eligible_nodes",
    "imageledger_prepull_target_present_nodes",
    "imageledger_prepull_target_missing_nodes",
    "imageledger_prepull_target_oldest_missing_age_seconds",
    "imageledger_prepulls",
    "imageledger_outbox_backlog",
    "imageledger_outbox_oldest_age_seconds",
)


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


async def scrape(port: int) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


async def resolve(port: int, reference: str) -> int:
    url = f"http://127.0.0.1:{port}/spawner/v1/resolve"
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, params={"reference": reference}) as response,
    ):
        return response.status


async def promtool_check(text: str) -> tuple[int, str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: apt-get install prometheus")
    process = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate(text.encode())
    assert process.returncode is not None
    return process.returncode, out.decode()


def completion(registry: str, digest: str, node: str) -> bytes:
    image = DockerReference(registry=registry, repository=REPO, tag="w_2077_43", digest=digest)
    done = PodCompleted(
        node=node, image=image, pod="prepull-1", succeeded=True, finished_at=datetime.now(UTC)
    )
    return encode_message(done)


async def test_a_live_worker_answers_the_on_call_questions_and_passes_promtool(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    weekly, older, _daily = await push_repository(registry, registry_session)
    # A tag the refreshes list but never HEAD (not a prepull candidate, no resolve budget):
    # the only kind resolving asks the registry about.
    experiment = await registry.pusher(registry_session).push_image(
        REPO, ["exp_2077_10_01"], variant="x"
    )
    exchange, now = broker_settings.prefix, datetime.now(UTC)
    config = evolve(
        make_config(registry.host),
        images=evolve(make_config(registry.host).images, resolve_budget=0),
    )
    async with (
        running_worker(config, broker_settings, database_url) as runtime,
        serve(runtime, "127.0.0.1", 0) as port,
    ):
        taint = {"key": "maintenance", "effect": "NoSchedule"}
        for name, body in [
            ("node-a", inventory("node-a", [older], at=now)),
            ("node-b", inventory("node-b", [], at=now)),
            ("node-c", inventory("node-c", [], taints=[taint], at=now)),
        ]:
            await publish_raw(rabbit_connection, exchange, "node.inventory", body, message_id=name)
        await publish_raw(rabbit_connection, exchange, "node.inventory", b"{not json")
        await publish_raw(
            rabbit_connection, "", f"{exchange}.node_inventory", b"{}",
            headers={"x-imageledger-routing-key": "prepull.pod_completed"},
        )  # fmt: skip
        await publish_raw(rabbit_connection, exchange, "refresh.request", b"{}", message_id="r1")
        await wait_until(lambda: _in_flight(engine, 2), within=20, what="two prepulls in flight")
        body = completion(registry.host, weekly, "node-a")
        await publish_raw(rabbit_connection, exchange, "prepull.pod_completed", body)
        await wait_until(lambda: _succeeded(engine, 1), within=10, what="node-a's weekly")
        await wait_until(lambda: _in_flight(engine, 2), within=10, what="node-a's next prepull")
        await wait_until(lambda: _outbox_empty(engine), within=10, what="the outbox relayed")

        # the experiment leaves the registry: the ledger lists its tag but never learnt its
        # digest, so resolving it asks the registry (one fresh HEAD, its answer cached for
        # the next four), which no longer has it
        await registry.pusher(registry_session).delete(REPO, experiment)
        before = parse(await scrape(port))
        gone = f"{registry.host}/{REPO}:exp_2077_10_01"
        assert [await resolve(port, gone) for _ in range(5)] == [400] * 5
        unheard = f"{registry.host}/{REPO}:no_such_tag"  # unknown to the ledger: no request
        assert await resolve(port, unheard) == 400
        text = await scrape(port)
        async with factory.runtime(config, broker_settings, database_url) as other:
            other_text = (await other.scrape()).decode()

    samples = parse(text)
    code, lint = await promtool_check(text)
    assert (code, lint) == (0, "")
    assert "_created" not in text
    assert value(samples, "process_resident_memory_bytes") is not None
    assert any(name == "python_info" for name, _ in samples)

    _assert_prepull_targets(samples, registry.host)
    prepulls = series(samples, "imageledger_prepulls")
    assert {dict(k)["state"]: v for k, v in prepulls.items()} == {
        "in_flight": 2,
        "failed": 0,
        "parked": 0,
        "succeeded": 1,
    }
    await _assert_refresh(samples, engine, registry.host)
    _assert_requests(before, samples)
    _assert_messages(samples)

    other_samples = parse(other_text)
    for family in LEDGER_FAMILIES:  # ages grow between the two scrapes
        mine, theirs = series(samples, family), series(other_samples, family)
        assert theirs == pytest.approx(mine, abs=5 if "age" in family else 0), family
    assert {dict(k)["queue"]: v for k, v in series(other_samples, _CONSUMERS).items()} == {
        "refresh": 0,
        "pod_completed": 0,
        "node_inventory": 0,
    }  # a worker not connected holds no consumer


_CONSUMERS = "imageledger_queue_consumers"


def _assert_prepull_targets(samples: Samples, host: str) -> None:
    def target(family: str, tag: str) -> float | None:
        name = f"imageledger_prepull_target_{family}"
        return value(samples, name, registry=host, repository=REPO, tag=tag)

    # node-a holds the older weekly and got the new one; node-b holds nothing; node-c is
    # tainted, so not counted
    expected = {
        "w_2077_43": (2, 1, 1),
        "w_2077_42": (2, 1, 1),
        "d_2077_10_23": (2, 0, 2),
    }
    for tag, (eligible, present, missing) in expected.items():
        assert target("eligible_nodes", tag) == eligible, tag
        assert target("present_nodes", tag) == present, tag
        assert target("missing_nodes", tag) == missing, tag
        age = target("oldest_missing_age_seconds", tag)
        assert age is not None, tag
        assert 0 < age < 120, (tag, age)
    tags = {dict(k)["tag"] for k in series(samples, "imageledger_prepull_target_missing_nodes")}
    assert tags == set(expected)


async def _assert_refresh(samples: Samples, engine: AsyncEngine, host: str) -> None:
    (finished,) = await rows(engine, "SELECT finished_at FROM ledger.refreshes")
    source = {"registry": host, "repository": REPO}
    last = value(samples, "imageledger_refresh_last_success_timestamp_seconds", **source)
    assert last == pytest.approx(finished.finished_at.timestamp())
    assert value(samples, "imageledger_refresh_interval_seconds", **source) == 300
    failures = series(samples, "imageledger_refresh_failures_total")
    assert len(failures) == 12  # every class, at 0
    assert set(failures.values()) == {0}
    assert value(samples, "imageledger_events_appended_total", type="refresh.completed") == 1


def _assert_requests(before: Samples, after: Samples) -> None:
    name = "imageledger_registry_requests_total"
    assert (value(before, name, method="GET", status="200") or 0) >= 1  # the tag list
    assert (value(before, name, method="HEAD", status="200") or 0) >= 3  # the digests
    grown = {
        labels: count - before.get((name, labels), 0)
        for labels, count in series(after, name).items()
        if count != before.get((name, labels), 0)
    }
    assert grown == {frozenset({("method", "HEAD"), ("status", "404")}): 1}  # the resolves


def _assert_messages(samples: Samples) -> None:
    consumed = series(samples, "imageledger_messages_consumed_total")
    assert {dict(k)["queue"]: v for k, v in consumed.items()} == {
        "node_inventory": 3,
        "pod_completed": 1,
        "refresh": 1,
    }
    assert {dict(k)["queue"]: v for k, v in series(samples, _CONSUMERS).items()} == {
        "refresh": 1,
        "pod_completed": 1,
        "node_inventory": 1,
    }
    dead = "imageledger_messages_dead_lettered_total"
    assert value(samples, dead, routing_key="node.inventory", reason="invalid") == 1
    assert value(samples, dead, routing_key="prepull.pod_completed", reason="unroutable") == 1
    assert value(samples, dead, routing_key="refresh.request", reason="gave_up") == 0
    assert sum(series(samples, dead).values()) == 2
    published = "imageledger_messages_published_total"
    assert (value(samples, published, routing_key="images.changed") or 0) >= 1
    assert (value(samples, published, routing_key="prepull.requested") or 0) >= 3
    assert (value(samples, "imageledger_fold_seconds_count", queue="node_inventory") or 0) >= 1
    assert value(samples, "imageledger_outbox_backlog") == 0
    assert value(samples, "imageledger_outbox_oldest_age_seconds") == 0


async def test_a_failed_refresh_is_counted_by_reason_and_no_success_is_reported(
    registry: RunningRegistry,
    database_url: str,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    source = {"type": "docker", "registry": registry.host, "repository": "nobody/here"}
    config = parse_config({"images": {"source": {**source, "insecure": True}}})
    async with running_worker(config, broker_settings, database_url) as runtime:
        await publish_raw(rabbit_connection, broker_settings.prefix, "refresh.request", b"{}")

        async def failed() -> bool:
            return _failures(parse((await runtime.scrape()).decode())) != {}

        await wait_until(failed, within=20, what="the refresh failure counted")
        samples = parse((await runtime.scrape()).decode())
    assert _failures(samples) == {"not_found": 1}
    assert series(samples, "imageledger_refresh_last_success_timestamp_seconds") == {}
    labels = {"registry": registry.host, "repository": "nobody/here"}
    assert value(samples, "imageledger_refresh_interval_seconds", **labels) == 300
    assert value(samples, "imageledger_refresh_seconds_count", status="failed") == 1


def _failures(samples: Samples) -> Mapping[str, float]:
    counts = series(samples, "imageledger_refresh_failures_total")
    return {dict(k)["reason"]: v for k, v in counts.items() if v}


async def _count(engine: AsyncEngine, sql: str) -> int:
    found: list[Any] = await rows(engine, sql)
    return int(found[0][0] or 0)


async def _in_flight(engine: AsyncEngine, count: int) -> bool:
    sql = "SELECT count(*) FROM ledger.node_images WHERE prepull_state = 'requested'"
    return await _count(engine, sql) == count


async def _succeeded(engine: AsyncEngine, count: int) -> bool:
    sql = "SELECT count(*) FROM ledger.node_images WHERE prepull_state = 'succeeded'"
    return await _count(engine, sql) == count


async def _outbox_empty(engine: AsyncEngine) -> bool:
    sql = "SELECT count(*) FROM ledger.outbox WHERE published_at IS NULL"
    return await _count(engine, sql) == 0
