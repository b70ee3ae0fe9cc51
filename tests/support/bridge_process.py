"""``imageledger kube`` as a child process, as an operator runs it: its config, kubeconfig,
broker names and port; started, SIGKILLed, restarted and stopped by a test."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support.child import ChildProcess
from tests.support.cli import ENTRY
from tests.support.net import free_port
from tests.support.rabbit import wait_until

__all__ = ["BridgeProcess", "bridge_config"]


def bridge_config(
    path: Path, base: dict[str, Any], namespace: str, *, inventory_interval: float = 30.0
) -> Path:
    """``base`` (a worker configuration) with a ``kube:`` section for the stand-in: its
    namespace, quick retries, and ``inventory_interval`` seconds between full reports."""
    kube = {
        "namespace": namespace,
        "inventoryInterval": inventory_interval,
        "retryDelay": 0.2,
        "maxRetryDelay": 1,
    }
    path.write_text(json.dumps({**base, "kube": kube}))
    return path


class BridgeProcess(ChildProcess):
    """One ``imageledger kube`` child, logging (appending) to ``log``."""

    stop_within = 15.0

    def __init__(
        self, config: Path, kubeconfig: Path, amqp_url: str, prefix: str, log: Path
    ) -> None:
        super().__init__()
        self._env = {
            **os.environ,
            "IMAGELEDGER_CONFIG": str(config),
            "KUBECONFIG": str(kubeconfig),
            "IMAGELEDGER_AMQP_URL": amqp_url,
            "IMAGELEDGER_BROKER_PREFIX": prefix,
            "IMAGELEDGER_HOST": "127.0.0.1",
            "IMAGELEDGER_LOG_FORMAT": "logfmt",  # the tests read its lines as key=value
        }
        self.log = log
        self.port = 0

    async def start(self, *, ready_within: float = 30.0) -> None:
        """Start the child and wait until ``/readyz`` answers 200 (nodes and pods listed,
        RabbitMQ connected)."""
        self.port = free_port()
        with self.log.open("ab") as sink:
            self._process = await asyncio.create_subprocess_exec(
                *ENTRY, "kube", env={**self._env, "IMAGELEDGER_PORT": str(self.port)},
                stdout=sink, stderr=sink,
            )  # fmt: skip
        await wait_until(self.ready, within=ready_within, what="the bridge ready")

    async def get(self, path: str) -> tuple[int, str]:
        """Status and body of ``GET path`` on the bridge's HTTP port."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{self.port}{path}") as response,
        ):
            return response.status, await response.text()

    async def ready(self) -> bool:
        """Whether ``/readyz`` answers 200; fails when the child has exited."""
        assert self.running, f"the bridge exited: {self.log_tail()}"
        try:
            status, _ = await self.get("/readyz")
        except aiohttp.ClientError:
            return False
        return status == 200

    async def metrics(self) -> dict[str, float]:
        """Every sample of ``/metrics``, keyed as Prometheus writes it, labels sorted:
        ``name{label="value",...}``."""
        status, text = await self.get("/metrics")
        assert status == 200, text
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    def log_lines(self) -> list[str]:
        """Every line the bridge logged so far (all runs)."""
        return self.log.read_text(errors="replace").splitlines() if self.log.exists() else []

    def log_tail(self, lines: int = 30) -> str:
        """The end of the log, for failure messages."""
        return "\n".join(self.log_lines()[-lines:])
