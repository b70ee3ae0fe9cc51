"""``--json`` results of ``migrate``, ``rebuild`` and ``refresh`` (publishing) for scripts."""

from __future__ import annotations

import asyncio
import json

from aio_pika.abc import AbstractRobustConnection
from click.testing import CliRunner

from worker.adapters.broker.connection import Broker, BrokerSettings
from worker.adapters.ledger.database import safe_url
from worker.cli import main


def test_migrate_and_rebuild_print_a_json_result(database_url: str) -> None:
    runner = CliRunner()
    text = runner.invoke(main, ["migrate", "--database-url", database_url])
    assert text.exit_code == 0, text.output
    revision = text.stdout.strip().rsplit(" ", 1)[-1]
    migrated = runner.invoke(main, ["migrate", "--database-url", database_url, "--json"])
    assert migrated.exit_code == 0, migrated.output
    assert json.loads(migrated.stdout) == {
        "database": safe_url(database_url),
        "revision": revision,
    }
    rebuilt = runner.invoke(main, ["rebuild", "--database-url", database_url, "--json"])
    assert rebuilt.exit_code == 0, rebuilt.output
    result = json.loads(rebuilt.stdout)
    assert set(result) == {"database", "events", "rows_written", "seconds", "events_per_second"}
    assert result["events"] == 0
    assert rebuilt.stderr == ""  # no progress with --json
    shown = runner.invoke(main, ["rebuild", "--database-url", database_url])
    assert shown.stderr.startswith("rebuild: ")  # without: progress lines on stderr


async def test_refresh_prints_the_published_message_id_as_json(
    broker: Broker, broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    args = ["refresh", "--amqp-url", broker_settings.url, "--prefix", broker_settings.prefix]
    result = await asyncio.to_thread(CliRunner().invoke, main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert list(document) == ["message_id", "exchange", "queue", "consumers"]
    channel = await rabbit_connection.channel()
    queue = await channel.get_queue(broker.topology.queue_for("refresh.request").name)
    async with asyncio.timeout(10), queue.iterator() as messages:  # single active consumer
        async for message in messages:
            assert message.message_id == document["message_id"]
            await message.ack()
            break
