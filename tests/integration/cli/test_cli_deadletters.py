"""``imageledger dead-letters list|replay|purge`` against a real RabbitMQ and the real consumer."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection
from attrs import frozen
from click.testing import CliRunner, Result

from tests.support.cli import ENTRY
from tests.support.rabbit import drain, publish_raw, queue_depth, wait_until
from worker.adapters.broker.connection import (
    ATTEMPT_HEADER,
    QUEUE_HEADER,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    Broker,
    BrokerSettings,
)
from worker.adapters.broker.dead_letters import DeadLetterQueue
from worker.adapters.broker.topology import DEAD_AT_HEADER
from worker.cli import main
from worker.domain.messages import Delivery, NodeInventory, PodCompleted

INVENTORY = NodeInventory.ROUTING_KEY
COMPLETED = PodCompleted.ROUTING_KEY
POISON = json.dumps({"node": "poison", "observed_at": "2077-01-01T00:00:00Z"}).encode()
BAD_JSON = b"{not json"
BAD_COMPLETION = b'{"node": "n1"}'
UNROUTABLE = b'{"anything": true}'


@frozen
class Poisoned:
    """A dead queue holding four dead letters: three from the real consumer, one unroutable."""

    url: str
    prefix: str
    dead: str
    bodies: dict[str, bytes]


async def _until_dead(broker: Broker, connection: AbstractRobustConnection, count: int) -> None:
    dead = broker.topology.dead_queue

    async def arrived() -> bool:
        return await queue_depth(connection, dead) == count

    await wait_until(arrived, what=f"{count} dead letters")


@pytest.fixture
async def poisoned(
    broker: Broker, broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> Poisoned:
    async def handler(batch: list[Delivery]) -> None:
        for delivery in batch:
            if isinstance(delivery.message, NodeInventory) and delivery.message.node == "poison":
                raise ValueError("node poison cannot be folded")

    await broker.consume(INVENTORY, handler)
    await broker.consume(COMPLETED, handler)
    exchange = broker.topology.exchange
    await publish_raw(rabbit_connection, exchange, INVENTORY, BAD_JSON, message_id="bad-json")
    await _until_dead(broker, rabbit_connection, 1)
    await publish_raw(rabbit_connection, exchange, INVENTORY, POISON, message_id="poison")
    await _until_dead(broker, rabbit_connection, 2)
    await publish_raw(rabbit_connection, exchange, COMPLETED, BAD_COMPLETION, message_id="pod")
    await _until_dead(broker, rabbit_connection, 3)
    await broker.stop_consuming()  # replayed messages stay on the work queues for the test
    headers = {
        REASON_HEADER: "unknown routing key 'bogus.key'",
        ROUTING_KEY_HEADER: "bogus.key",
        QUEUE_HEADER: f"{broker_settings.prefix}.node_inventory",
    }
    await publish_raw(
        rabbit_connection,
        broker.topology.dead_exchange,
        "bogus.key",
        UNROUTABLE,
        message_id="bogus",
        headers=headers,
    )
    await _until_dead(broker, rabbit_connection, 4)
    bodies = {"bad-json": BAD_JSON, "poison": POISON, "pod": BAD_COMPLETION, "bogus": UNROUTABLE}
    return Poisoned(broker_settings.url, broker_settings.prefix, broker.topology.dead_queue, bodies)


async def cli(poisoned: Poisoned, *args: str) -> Result:
    """``imageledger dead-letters ARGS`` on the fixture's broker (in a thread: it runs a loop)."""
    where = ["--amqp-url", poisoned.url, "--prefix", poisoned.prefix]
    command, *rest = args
    return await asyncio.to_thread(
        CliRunner().invoke, main, ["dead-letters", command, *where, *rest]
    )


async def listed(poisoned: Poisoned, *args: str) -> dict[str, Any]:
    result = await cli(poisoned, "list", "--json", *args)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


async def test_list_shows_the_dead_letters_and_leaves_the_queue_as_it_was(
    poisoned: Poisoned, rabbit_connection: AbstractRobustConnection
) -> None:
    first = await listed(poisoned)
    assert first["queue"] == poisoned.dead
    assert (first["total"], first["shown"]) == (4, 4)
    rows = {row["message_id"]: row for row in first["dead_letters"]}
    assert [row["message_id"] for row in first["dead_letters"]] == [
        "bad-json",
        "poison",
        "pod",
        "bogus",
    ]
    work = f"{poisoned.prefix}.node_inventory"
    assert rows["poison"]["routing_key"] == INVENTORY
    assert rows["poison"]["source_queue"] == work
    assert rows["poison"]["attempts"] == 3
    assert rows["poison"]["reason"] == (
        "gave up after 3 attempts: ValueError: node poison cannot be folded"
    )
    assert rows["poison"]["size"] == len(POISON)
    assert rows["poison"]["preview"] == POISON.decode()
    assert rows["bad-json"]["attempts"] == 1
    assert rows["bad-json"]["reason"].startswith("malformed JSON: ")
    assert rows["pod"]["routing_key"] == COMPLETED
    assert rows["pod"]["source_queue"] == f"{poisoned.prefix}.pod_completed"
    assert rows["bogus"]["routing_key"] == "bogus.key"
    assert rows["bogus"]["dead_lettered_at"] is None  # published without the worker's header
    dead_at = datetime.fromisoformat(rows["poison"]["dead_lettered_at"])
    assert timedelta(0) <= datetime.now(UTC) - dead_at < timedelta(minutes=1)

    table = await cli(poisoned, "list")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines.pop(0) == f"4 dead letters in {poisoned.dead}:"  # the queue it read
    assert lines[0].split() == [
        "message_id",
        "routing_key",
        "source_queue",
        "attempts",
        "dead_lettered_at",
        "size",
        "reason",
        "preview",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["bad-json", "poison", "pod", "bogus"]
    moment = rows["poison"]["dead_lettered_at"]
    assert lines[2].split()[:6] == ["poison", INVENTORY, work, "3", moment, str(len(POISON))]
    assert lines[4].split()[:5] == ["bogus", "bogus.key", work, "1", str(len(UNROUTABLE))]

    again = await listed(poisoned)
    strip = [{k: v for k, v in r.items() if k != "returns"} for r in again["dead_letters"]]
    assert strip == [{k: v for k, v in r.items() if k != "returns"} for r in first["dead_letters"]]
    limited = await cli(poisoned, "list", "--limit", "2")
    assert len(limited.stdout.splitlines()) == 5
    assert limited.stdout.splitlines()[-1] == "(2 of 4 shown; use --limit to see more)"

    assert await queue_depth(rabbit_connection, poisoned.dead) == 4
    kept = await drain(rabbit_connection, poisoned.dead, 4)
    assert [m.message_id for m in kept] == ["bad-json", "poison", "pod", "bogus"]
    assert {m.message_id: m.body for m in kept} == poisoned.bodies
    assert kept[1].headers[ATTEMPT_HEADER] == 3


async def test_a_dead_letter_returned_too_often_is_copied_fresh_in_its_place(
    poisoned: Poisoned, rabbit_connection: AbstractRobustConnection
) -> None:
    seen = []
    for _ in range(4):
        async with DeadLetterQueue(poisoned.url, poisoned.prefix, refresh_after=2) as queue:
            seen.append(await queue.peek())
    assert [letter.returns for letter in seen[2]] == [2, 2, 2, 2]
    assert [letter.returns for letter in seen[3]] == [0, 0, 0, 0]  # copies, counted afresh
    for letters in seen[1:]:
        assert [(x.message_id, x.body, x.reason) for x in letters] == [
            (x.message_id, x.body, x.reason) for x in seen[0]
        ]
    assert await queue_depth(rabbit_connection, poisoned.dead) == 4


async def test_replay_republishes_under_the_original_routing_key_then_acks(
    poisoned: Poisoned, rabbit_connection: AbstractRobustConnection
) -> None:
    nothing = await cli(poisoned, "replay")
    assert nothing.exit_code == 2
    assert nothing.stderr.startswith("imageledger: error: nothing selected: give --id")

    one = await cli(poisoned, "replay", "--id", "poison")
    assert one.exit_code == 0, one.output
    assert one.stdout == f"replayed 1 dead letter from {poisoned.dead}\n"
    assert await queue_depth(rabbit_connection, poisoned.dead) == 3
    (again,) = await drain(rabbit_connection, f"{poisoned.prefix}.node_inventory", 1)
    assert (again.message_id, again.routing_key, again.body) == ("poison", INVENTORY, POISON)
    assert again.headers[ATTEMPT_HEADER] == 1
    assert REASON_HEADER not in again.headers
    assert QUEUE_HEADER not in again.headers
    assert DEAD_AT_HEADER not in again.headers

    unknown = await cli(poisoned, "replay", "--id", "no-such-id")
    assert unknown.exit_code == 2
    assert unknown.stderr == (
        f"imageledger: error: no dead letter with message id no-such-id in {poisoned.dead}\n"
    )

    by_key = await cli(poisoned, "replay", "--routing-key", COMPLETED, "--json")
    assert by_key.exit_code == 0
    assert json.loads(by_key.stdout)["replayed"] == ["pod"]
    (pod,) = await drain(rabbit_connection, f"{poisoned.prefix}.pod_completed", 1)
    assert (pod.message_id, pod.routing_key, pod.body) == ("pod", COMPLETED, BAD_COMPLETION)

    rest = await cli(poisoned, "replay", "--all")
    assert rest.exit_code == 1
    assert rest.stdout == f"replayed 1 dead letter from {poisoned.dead}\n"
    assert rest.stderr == (
        f"imageledger: error: 1 dead letter not replayed, kept in {poisoned.dead}: bogus: "
        "not replayed: unroutable routing key bogus.key\n"
    )
    (bad,) = await drain(rabbit_connection, f"{poisoned.prefix}.node_inventory", 1)
    assert (bad.message_id, bad.routing_key, bad.body) == ("bad-json", INVENTORY, BAD_JSON)
    (left,) = await drain(rabbit_connection, poisoned.dead, 1)
    assert left.message_id == "bogus"


def _purge_on_a_terminal(poisoned: Poisoned, answer: str) -> tuple[int, str, str]:
    """``dead-letters purge --all`` with a terminal as stdin, answering the question."""
    controller, terminal = os.openpty()
    command = [*ENTRY, "dead-letters"]
    where = ["--amqp-url", poisoned.url, "--prefix", poisoned.prefix]
    try:
        process = subprocess.Popen(
            [*command, "purge", *where, "--all"],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.write(controller, answer.encode() + b"\n")
        out, err = process.communicate(timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    return process.returncode, out.decode(), err.decode()


async def test_purge_deletes_the_selected_dead_letters_after_confirmation(
    poisoned: Poisoned, rabbit_connection: AbstractRobustConnection
) -> None:
    unasked = await cli(poisoned, "purge", "--all")
    assert unasked.exit_code == 2
    assert unasked.stderr == (
        "imageledger: error: purge deletes dead letters for good: pass --yes (no terminal to ask)\n"
    )
    assert await queue_depth(rabbit_connection, poisoned.dead) == 4

    one = await cli(poisoned, "purge", "--id", "bad-json", "--yes")
    assert one.exit_code == 0, one.output
    assert one.stdout == f"deleted 1 dead letter from {poisoned.dead}\n"
    by_key = await cli(poisoned, "purge", "--routing-key", "bogus.key", "--yes", "--json")
    assert json.loads(by_key.stdout) == {"queue": poisoned.dead, "deleted": ["bogus"]}
    assert await queue_depth(rabbit_connection, poisoned.dead) == 2

    code, out, err = await asyncio.to_thread(_purge_on_a_terminal, poisoned, "n")
    assert code == 1
    assert out.startswith(f"Delete 2 dead letters from {poisoned.dead} for good? [y/N]")
    assert err == "imageledger: error: nothing deleted\n"
    assert await queue_depth(rabbit_connection, poisoned.dead) == 2

    code, out, err = await asyncio.to_thread(_purge_on_a_terminal, poisoned, "y")
    assert code == 0, err
    assert out.endswith(f"deleted 2 dead letters from {poisoned.dead}\n")
    assert await queue_depth(rabbit_connection, poisoned.dead) == 0
    empty = await cli(poisoned, "list")
    assert empty.stdout == f"no dead letters in {poisoned.dead}\n"


async def test_a_prefix_without_a_dead_queue_is_one_line(poisoned: Poisoned) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["dead-letters", "list", "--amqp-url", poisoned.url, "--prefix", "nobody-here"],
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "imageledger: error: queue 'nobody-here.dead' does not exist at amqp://guest:***@"
    )
    assert len(result.stderr.splitlines()) == 1
