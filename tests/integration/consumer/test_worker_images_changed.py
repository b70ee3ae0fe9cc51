"""``images.changed`` through the worker: once per change of the menu or the prepull set."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.consumer.test_worker import (
    REPO,
    inventory,
    make_config,
    rows,
    running_worker,
)
from tests.support.rabbit import publish_raw, wait_until
from tests.support.registry import RunningRegistry
from worker.adapters.broker.connection import BrokerSettings
from worker.converter import decode_outbound_message
from worker.domain.messages import ImagesChangedMessage, TaggedImage

KEY = "images.changed"


@asynccontextmanager
async def captured(connection: AbstractRobustConnection, exchange: str) -> AsyncIterator[Inbox]:
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, KEY)
    try:
        yield Inbox(queue)
    finally:
        await channel.close()


class Inbox:
    """``images.changed`` messages as they arrive, decoded, with their ids."""

    def __init__(self, queue: AbstractQueue) -> None:
        self._queue = queue
        self.received: list[tuple[str, ImagesChangedMessage]] = []

    async def take(self, count: int, within: float = 15.0) -> list[ImagesChangedMessage]:
        """Wait for ``count`` more messages; fail if another one follows within 1.5 s."""
        wanted = len(self.received) + count
        async with asyncio.timeout(within):
            while len(self.received) < wanted:
                await self._poll()
        await asyncio.sleep(1.5)  # the relay polls every second: anything extra is here now
        await self._poll()
        assert len(self.received) == wanted, [m for _, m in self.received[wanted:]]
        return [m for _, m in self.received[wanted - count :]]

    async def _poll(self) -> None:
        message = await self._queue.get(fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            return
        await message.ack()
        decoded = decode_outbound_message(KEY, message.body)
        assert isinstance(decoded, ImagesChangedMessage)
        self.received.append((message.message_id or "", decoded))


async def _refreshes(engine: AsyncEngine, count: int) -> bool:
    done = await rows(engine, "SELECT count(*) AS n FROM ledger.refreshes")
    return int(done[0].n) >= count


async def test_images_changed_once_per_change_and_never_without_one(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    pusher = registry.pusher(registry_session)
    w43 = await pusher.push_image(REPO, ["w_2077_43", "recommended"], variant="w43")
    await pusher.push_image(REPO, ["w_2077_42"], variant="w42")
    await pusher.push_image(REPO, ["d_2077_10_23"], variant="d")
    exchange = broker_settings.prefix

    async def refresh(message_id: str, count: int) -> None:
        await publish_raw(
            rabbit_connection, exchange, "refresh.request", b"{}", message_id=message_id
        )
        await wait_until(lambda: _refreshes(engine, count), within=20, what=f"refresh {count}")

    async with (
        running_worker(make_config(registry.host), broker_settings, database_url),
        captured(rabbit_connection, exchange) as inbox,
    ):
        await refresh("r1", 1)
        (first,) = await inbox.take(1)
        assert first.recommended == TaggedImage("recommended", w43)
        assert first.menu_added == ("recommended", "w_2077_42", "d_2077_10_23")
        assert first.prepull_added == ("w_2077_43", "w_2077_42", "d_2077_10_23")

        await refresh("r2", 2)  # nothing changed in the registry
        assert await inbox.take(0) == []

        w44 = await pusher.push_image(REPO, ["w_2077_44", "recommended"], variant="w44")
        await refresh("r3", 3)
        (moved,) = await inbox.take(1)
        assert moved.recommended == TaggedImage("recommended", w44)
        assert moved.moved == ("recommended",)
        assert (moved.prepull_added, moved.prepull_removed) == (("w_2077_44",), ("w_2077_42",))
        assert (moved.menu_added, moved.menu_removed) == (("w_2077_43",), ("w_2077_42",))
        assert moved.dropdown_added == ("w_2077_44",)
        assert moved.dropdown_removed == ()

        # an eligible node holding only the new weekly: the other radio entries are gated
        await publish_raw(
            rabbit_connection,
            exchange,
            "node.inventory",
            inventory("node-a", [w44]),
            message_id="n",
        )
        (gated,) = await inbox.take(1)
        assert (gated.menu_added, gated.menu_removed) == ((), ("w_2077_43", "d_2077_10_23"))
        assert gated.prepull_added == gated.prepull_removed == gated.moved == ()
        assert gated.recommended == TaggedImage("recommended", w44)
    ids = [message_id for message_id, _ in inbox.received]
    assert len(set(ids)) == 3
    assert all(i.startswith("images.changed:") for i in ids)
