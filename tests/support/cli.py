"""The real ``imageledger`` entry point in a child process, as an operator runs it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping

__all__ = ["ENTRY", "run_cli"]

ENTRY = (sys.executable, "-c", "from worker.cli import run; run()")
"""The console script's entry point (``worker.cli:run``) without depending on PATH."""


async def run_cli(*args: str, env: Mapping[str, str]) -> tuple[int, str, str]:
    """Run ``imageledger ARGS`` with ``env`` added to ours: exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        *ENTRY, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
