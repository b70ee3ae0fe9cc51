"""Small network helpers for tests: free loopback ports, an aiohttp app on one."""

from __future__ import annotations

import socket

from aiohttp import web
from attrs import define

__all__ = ["LoopbackSite", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@define
class LoopbackSite:
    """A stand-in's aiohttp application, served on a free loopback port between ``start``
    and ``stop`` (``port`` is 0 before)."""

    port: int = 0
    _runner: web.AppRunner | None = None

    async def start(
        self, app: web.Application, *, shutdown_timeout: float = 0.5, cancel: bool = False
    ) -> None:
        """Listen with ``app``; ``cancel`` cancels handlers whose client went away."""
        self._runner = web.AppRunner(
            app, shutdown_timeout=shutdown_timeout, handler_cancellation=cancel
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
