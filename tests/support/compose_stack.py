"""compose.yaml's own services run as local processes (no Docker engine here), as compose
would run them: their ``command`` through the image's entrypoint, their ``environment``,
their secrets as files, their bind-mounted config; host names mapped to this machine's."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from attrs import define, field

from tests.support.cli import ENTRY
from tests.support.compose_checks import secret_targets
from tests.support.manifests import ROOT

__all__ = ["LocalStack", "Service"]

ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"


@define
class Service:
    """One running (or finished) service process and its log."""

    name: str
    process: asyncio.subprocess.Process
    log: Path

    def log_tail(self, lines: int = 20) -> str:
        """The end of its output, for failure messages."""
        with suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


@define
class LocalStack:
    """Runs compose services here. ``hosts`` maps ``service:port`` strings of the file to
    local addresses; ``secrets`` are the secret files' contents; ``workdir`` holds them."""

    compose: dict[str, Any]
    workdir: Path
    hosts: dict[str, str]
    secrets: dict[str, str]
    extra_env: dict[str, str] = field(factory=dict)
    services: list[Service] = field(factory=list)

    def _map(self, text: str) -> str:
        for old, new in self.hosts.items():
            text = text.replace(old, new)
        return text

    def _file(self, service: str, container_path: str) -> str:
        """Where a path the service sees lives here: a secret, or a bind-mounted file."""
        spec = self.compose["services"][service]
        for secret, target in secret_targets(spec).items():
            if target == container_path:
                path = self.workdir / "secrets" / secret
                path.parent.mkdir(exist_ok=True)
                path.write_text(self.secrets[secret])
                return str(path)
        for volume in spec.get("volumes", []):
            source, target = volume.split(":")[:2]
            if target == container_path:
                path = self.workdir / f"{service}-{Path(source).name}"
                path.write_text(self._map((ROOT / source).read_text()))
                return str(path)
        return container_path

    def environment(self, service: str) -> dict[str, str]:
        """The service's environment here (ports from ``extra_env`` win)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGELEDGER_")}
        env["PYTHONPATH"] = str(ROOT)
        for key, value in self.compose["services"][service].get("environment", {}).items():
            env[key] = self._file(service, self._map(str(value)))
        return {**env, **self.extra_env}

    def argv(self, service: str) -> list[str]:
        """The service's command through the image's entrypoint, with local programs."""
        command = [self._map(part) for part in self.compose["services"][service]["command"]]
        program = {"imageledger": list(ENTRY), "python": [sys.executable]}[command[0]]
        return ["sh", str(ENTRYPOINT), *program, *command[1:]]

    async def start(self, service: str, env: dict[str, str] | None = None) -> Service:
        """Start ``service``; it is stopped (SIGTERM, then SIGKILL) when the stack closes."""
        log = self.workdir / f"{service}.log"
        with log.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                *self.argv(service),
                env={**self.environment(service), **(env or {})},
                stdout=sink,
                stderr=sink,
                cwd=self.workdir,
            )
        running = Service(service, process, log)
        self.services.append(running)
        return running

    async def run(self, service: str, within: float = 120.0) -> str:
        """Run a one-shot service to completion; its output (it must exit 0)."""
        running = await self.start(service)
        code = await asyncio.wait_for(running.process.wait(), within)
        assert code == 0, f"{service} exited {code}:\n{running.log_tail()}"
        return running.log.read_text()

    async def wait_healthy(self, service: str, url: str, within: float = 60.0) -> None:
        """Wait until ``url`` answers 200 (the service's health check, run from here)."""
        (running,) = [s for s in self.services if s.name == service]
        deadline = asyncio.get_running_loop().time() + within
        async with aiohttp.ClientSession() as http:
            while True:
                assert running.process.returncode is None, running.log_tail()
                with suppress(aiohttp.ClientError):
                    async with http.get(url) as response:
                        if response.status == 200:
                            return
                assert asyncio.get_running_loop().time() < deadline, running.log_tail()
                await asyncio.sleep(0.2)

    async def close(self) -> None:
        """Stop every service still running."""
        for running in reversed(self.services):
            if running.process.returncode is None:
                with suppress(ProcessLookupError):
                    running.process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(running.process.wait(), 15)
                except TimeoutError:
                    running.process.kill()
                    await running.process.wait()

    @classmethod
    @asynccontextmanager
    async def open(
        cls, workdir: Path, hosts: dict[str, str], secrets: dict[str, str]
    ) -> AsyncIterator[LocalStack]:
        """A stack over ``ROOT/compose.yaml``; every service stopped at the end."""
        compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
        stack = cls(compose, workdir, hosts, secrets)
        try:
            yield stack
        finally:
            await stack.close()
