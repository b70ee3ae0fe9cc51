"""Connections over the nodes of a cluster: robust ones that reconnect through the next URL.

aio-pika's ``RobustConnection`` reconnects by itself and then restores its channels (qos,
exchanges, queues, bindings, consumers), but always to the one URL it was made with. Every
connection loss and every failed reconnection attempt runs its ``_on_connection_close``
hook, before the reconnection loop makes its next attempt through ``self.url``. Turning
the URL to the next one there is all it takes for the loop to walk the list: a lost node
is left for the next one, a dead one is skipped after one refused attempt, and the list
wraps around, forever, until a node answers. Channels, confirms and consumers then come
back exactly as they do after a reconnection to the same node. (The first connection is
the caller's: ``Broker`` tries each URL in turn with a new connection; ``connect_first``
gives a plain connection to the first node that answers, for the operator's commands.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aio_pika
import structlog
from aio_pika import RobustConnection
from aio_pika.abc import AbstractConnection
from yarl import URL

from worker.adapters.broker.topology import (
    AUTHENTICATION_FAILED,
    UNREACHABLE,
    BrokerError,
    BrokerUnavailableError,
)
from worker.adapters.broker.urls import safe_amqp_url, split_amqp_urls

__all__ = ["FailoverConnection", "connect_first"]

log = structlog.get_logger(__name__)


class FailoverConnection(RobustConnection):
    """A ``RobustConnection`` that starts at ``urls[start]`` and, once connected, moves to
    the next URL (wrapping around) whenever the connection is lost or a reconnection
    attempt fails."""

    def __init__(self, urls: Sequence[str], start: int = 0, **kwargs: Any) -> None:
        if not urls:
            raise ValueError("FailoverConnection needs at least one URL")
        self._urls = tuple(URL(url) for url in urls)
        self._index = start % len(self._urls)
        self._connected_once = False
        super().__init__(self._urls[self._index], **kwargs)

    @property
    def current_url(self) -> str:
        """The URL of the node connected to (or tried next), without its password."""
        return safe_amqp_url(str(self._urls[self._index]))

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        # Turned before the robust connection's own hook wakes its reconnection loop, so
        # the loop's next attempt already goes to the next node. A first attempt that
        # fails ends this connection (the caller tries the next URL with a new one).
        closing_down = self.close_called or self.is_closed
        if len(self._urls) > 1 and self._connected_once and not closing_down:
            lost = self.current_url
            self._index = (self._index + 1) % len(self._urls)
            self.url = self._urls[self._index]
            log.warning(
                "broker connection lost or refused; the next attempt goes to the next node",
                lost=lost,
                next=self.current_url,
            )
        await super()._on_connection_close(closing)

    async def _on_connected(self) -> None:
        await super()._on_connected()
        self._connected_once = True
        if len(self._urls) > 1:
            log.info("broker connected", url=self.current_url)


async def connect_first(url: str, name: str, *, within: float) -> AbstractConnection:
    """A plain (not robust) connection to the first of the URLs in ``url`` that answers,
    trying each once (for a command an operator waits for).

    Raises
    ------
    BrokerError
        A node refused the credentials.
    BrokerUnavailableError
        No node answered.
    """
    urls = split_amqp_urls(url)
    errors: list[str] = []
    for one in urls:
        where = safe_amqp_url(one)
        try:
            return await aio_pika.connect(
                one, timeout=within, client_properties={"connection_name": name}
            )
        except AUTHENTICATION_FAILED as exc:
            raise BrokerError(f"RabbitMQ at {where} refused login: {exc}") from exc
        except (*UNREACHABLE, TimeoutError) as exc:
            errors.append(str(exc) if len(urls) == 1 else f"{where}: {exc}")
    raise BrokerUnavailableError(
        f"cannot reach RabbitMQ at {safe_amqp_url(url)}: {'; '.join(errors)}"
    )
