"""The whole chain a deployment runs, here: the real registry, PostgreSQL and RabbitMQ, the
worker (in this process, as ``imageledger run`` builds it), ``imageledger kube`` as a child
process, and the stand-in API server driven through its kubeconfig."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aio_pika.abc import AbstractRobustConnection
from attrs import define
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.bridge_process import BridgeProcess, bridge_config
from tests.support.kube import KubeStandIn
from tests.support.rabbit import publish_raw, wait_until
from worker import factory
from worker.adapters.broker import BrokerSettings
from worker.consumer import Worker
from worker.converter import parse_config

__all__ = ["LAB", "REPOSITORY", "TAINT", "Chain", "chain", "chain_config"]

REPOSITORY = "lsstsqre/sciplat-lab"
LAB = {"nublado": "lab"}
TAINT = ("nvidia.com/gpu", "NoSchedule", "true")


def chain_config(registry: str, **prepull: Any) -> dict[str, Any]:
    """The configuration of worker and bridge: the registry's repository, one weekly to
    prepull onto nodes labelled ``nublado=lab``, quick back-off and re-planning."""
    source = {"type": "docker", "registry": registry, "repository": REPOSITORY, "insecure": True}
    images = {"source": source, "numReleases": 0, "numWeeklies": 1, "numDailies": 0}
    quick = {"backoff": 0.3, "maxBackoff": 1, "planInterval": 0.3, "inFlightPerNode": 2}
    return {
        "images": {**images, "prepullTimeout": "20s"},
        "lab": {"nodeSelector": LAB, "tolerations": []},
        "prepull": {**quick, **prepull},
    }


@define
class Chain:
    """What a test drives and looks at."""

    kube: KubeStandIn
    bridge: BridgeProcess
    engine: AsyncEngine
    rabbit: AbstractRobustConnection
    prefix: str
    registry: str

    def pinned(self, digest: str) -> str:
        """The image name a prepull pod pulls, and the kubelet then lists."""
        return f"{self.registry}/{REPOSITORY}@{digest}"

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        """Rows of a query on the worker's database."""
        async with self.engine.connect() as connection:
            return list(await connection.execute(text(sql), params))

    async def refresh(self) -> None:
        """Ask the worker for a refresh, as cron or ``imageledger refresh`` does."""
        now = datetime.now(UTC).isoformat()
        body = json.dumps({"reason": "test", "requested_at": now}).encode()
        await publish_raw(self.rabbit, self.prefix, "refresh.request", body, message_id="r1")

    async def nodes_known(self, count: int) -> None:
        """Wait until the worker knows ``count`` nodes (from the bridge's reports)."""

        async def known() -> bool:
            return len(await self.rows("SELECT node FROM dashboard.nodes")) == count

        await wait_until(known, within=15, what=f"{count} nodes known")

    async def converged(self, eligible: int, within: float = 30.0) -> None:
        """Wait until every target is present on ``eligible`` counted nodes."""

        async def done() -> bool:
            status = await self.rows(
                "SELECT prepulled, eligible_nodes FROM dashboard.prepull_status"
            )
            return bool(status) and all(
                r.prepulled and r.eligible_nodes == eligible for r in status
            )

        await wait_until(done, within=within, what=f"prepulled on {eligible} nodes")

    async def events(self, kind: str) -> list[Any]:
        """Events of one type, in log order."""
        sql = "SELECT data FROM ledger.events WHERE type = :kind ORDER BY position"
        return [row.data for row in await self.rows(sql, kind=kind)]

    async def no_pods_left(self) -> None:
        """Wait until the bridge deleted every prepull pod."""
        await wait_until(lambda: not self.kube.pods(), within=10, what="no prepull pod left")


@asynccontextmanager
async def chain(
    tmp_path: Path,
    kube: KubeStandIn,
    document: dict[str, Any],
    settings: BrokerSettings,
    database_url: str,
    engine: AsyncEngine,
    rabbit: AbstractRobustConnection,
) -> AsyncIterator[Chain]:
    """Run the worker and the bridge over ``kube`` for the block; stop both after."""
    config_path = bridge_config(tmp_path / "config.json", document, kube.namespace)
    config = parse_config(document)
    bridge = BridgeProcess(
        config_path, kube.kubeconfig, settings.url, settings.prefix, tmp_path / "bridge.log"
    )
    registry = document["images"]["source"]["registry"]
    async with factory.runtime(config, settings, database_url) as runtime:
        worker = Worker(runtime, schedule_refreshes=False)
        await worker.start()
        try:
            await bridge.start()
            yield Chain(kube, bridge, engine, rabbit, settings.prefix, registry)
            assert bridge.running, bridge.log_tail()
        finally:
            if bridge.running:
                await bridge.terminate()
            await worker.stop()
