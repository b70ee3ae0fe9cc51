"""No silent prefix trap: ``refresh`` names the exchange it published to and warns when no
worker consumes the queue; every command with ``--prefix`` documents its variable."""

from __future__ import annotations

import asyncio
import json

import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from click.testing import CliRunner, Result

from worker.adapters.broker import Broker, BrokerSettings
from worker.cli import main


async def refresh(settings: BrokerSettings, *args: str, prefix: str | None = None) -> Result:
    options = ["--amqp-url", settings.url, "--prefix", prefix or settings.prefix, *args]
    return await asyncio.to_thread(CliRunner().invoke, main, ["refresh", *options])


async def test_a_refresh_nobody_consumes_is_a_warning_naming_queue_and_exchange(
    broker: Broker, broker_settings: BrokerSettings
) -> None:
    prefix = broker_settings.prefix
    result = await refresh(broker_settings)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"refresh requested on exchange {prefix} (message id refresh-")
    assert result.stderr == (
        f"imageledger: warning: no worker consumes queue {prefix}.refresh: the request waits "
        f"there until one starts with --prefix {prefix}. Is IMAGELEDGER_BROKER_PREFIX (or "
        "--prefix) the workers' prefix?\n"
    )
    document = json.loads((await refresh(broker_settings, "--json")).stdout)
    assert {k: v for k, v in document.items() if k != "message_id"} == {
        "exchange": prefix, "queue": f"{prefix}.refresh", "consumers": 0,
    }  # fmt: skip


async def test_a_refresh_a_worker_consumes_has_no_warning(
    broker: Broker, broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    got: list[str | None] = []

    async def take(message: AbstractIncomingMessage) -> None:
        got.append(message.message_id)
        await message.ack()

    channel = await rabbit_connection.channel()
    queue = await channel.get_queue(f"{broker_settings.prefix}.refresh")
    await queue.consume(take)
    result = await refresh(broker_settings, "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert document["consumers"] == 1
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.05)
    assert got == [document["message_id"]]


async def _ack(message: AbstractIncomingMessage) -> None:
    await message.ack()


async def test_a_wrong_prefix_is_caught_by_the_warning(
    broker: Broker, broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    channel = await rabbit_connection.channel()
    queue = await channel.get_queue(f"{broker_settings.prefix}.refresh")
    await queue.consume(_ack)  # the workers, on their prefix
    wrong = f"{broker_settings.prefix}-typo"
    result = await refresh(broker_settings, prefix=wrong)
    assert result.exit_code == 0
    assert f"refresh requested on exchange {wrong} " in result.stdout
    assert f"no worker consumes queue {wrong}.refresh" in result.stderr


@pytest.mark.parametrize(
    "command", [["refresh"], ["run"], ["dead-letters", "list"], ["dead-letters", "replay"],
                ["dead-letters", "purge"]],
)  # fmt: skip
def test_every_command_with_a_prefix_documents_its_variable(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "--prefix TEXT" in text
    assert "env var: IMAGELEDGER_BROKER_PREFIX" in text
    assert "it must be the workers'" in text
