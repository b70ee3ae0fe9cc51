"""What the tests' child processes (``imageledger run``, ``imageledger kube``) share:
whether one runs, SIGKILL, and SIGTERM with a deadline."""

from __future__ import annotations

import asyncio
import signal

__all__ = ["ChildProcess"]


class ChildProcess:
    """A child started by a subclass into ``_process``; ``terminate`` waits ``stop_within``
    seconds by default."""

    stop_within = 20.0

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        """The running child's process id."""
        assert self._process is not None
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether a child was started and has not exited."""
        return self._process is not None and self._process.returncode is None

    @property
    def returncode(self) -> int | None:
        """The child's exit status (None while it runs)."""
        return None if self._process is None else self._process.returncode

    async def kill(self) -> None:
        """SIGKILL the child (no graceful stop) and reap it."""
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()

    async def terminate(self, within: float | None = None) -> int:
        """SIGTERM the child; its exit status (SIGKILL after ``within`` seconds, by
        default ``stop_within``)."""
        assert self._process is not None
        if self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(
                    self._process.wait(), self.stop_within if within is None else within
                )
            except TimeoutError:
                await self.kill()
        assert self._process.returncode is not None
        return self._process.returncode
