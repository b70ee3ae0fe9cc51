"""A robust aio-pika connection over the nodes of a cluster: each new attempt tries the next URL.

aio-pika's ``RobustConnection`` reconnects by itself and then restores its channels (qos,
exchanges, queues, bindings, consumers), but always to the one URL it was made with. Every
connection loss and every failed connection attempt runs its ``_on_connection_close``
hook, before the reconnection loop makes its next attempt through ``self.url``. Turning
the URL to the next one there is all it takes for the loop to walk the list: a lost node
is left for the next one, a dead one is skipped after one refused attempt, and the list
wraps around, forever, until a node answers. Channels, confirms and consumers then come
back exactly as they do after a reconnection to the same node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog
from aio_pika import RobustConnection
from yarl import URL

from worker.adapters.broker.urls import safe_amqp_url

__all__ = ["FailoverConnection"]

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
