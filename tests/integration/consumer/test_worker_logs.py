"""What the worker's log says: one start line naming what it runs on (never a credential),
and one line with the figures of each refresh, planning round and dead letter."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.consumer.test_worker import (
    REPO,
    inventory,
    make_config,
    push_repository,
    running_worker,
)
from tests.support.cli import ENTRY
from tests.support.rabbit import publish_raw, wait_until
from tests.support.registry import RunningRegistry
from worker.adapters.broker.connection import BrokerSettings
from worker.factory import version

DB_SECRET = "db-pw-5e1f-Never-Log-Me"
AMQP_SECRET = "amqp-pw-9c2d-Never-Log-Me"


async def run_refused(tmp_path: Path, log_format: str) -> tuple[int, list[str]]:
    """``imageledger run`` whose RabbitMQ login is refused: it logs its start, then fails."""
    config = tmp_path / "config.yaml"
    source = {"type": "docker", "registry": "reg.test:5000", "repository": REPO}
    config.write_text(json.dumps({"images": {"source": source}}))
    env = {
        **os.environ,
        "IMAGELEDGER_LOG_FORMAT": log_format,
        "IMAGELEDGER_CONFIG": str(config),
        "IMAGELEDGER_DATABASE_URL": (
            f"postgresql+asyncpg://db-user:{DB_SECRET}@127.0.0.1:5432/imageledger_prod"
        ),
        "IMAGELEDGER_AMQP_URL": f"amqp://amqp-user:{AMQP_SECRET}@127.0.0.1:5672/platform",
        "IMAGELEDGER_BROKER_PREFIX": "lab-ledger",
    }
    process = await asyncio.create_subprocess_exec(
        *ENTRY, "run", "--host", "127.0.0.1", "--port", "0", "--no-schedule",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert out == b""
    text = err.decode()
    assert DB_SECRET not in text
    assert AMQP_SECRET not in text
    assert process.returncode is not None
    return process.returncode, text.splitlines()


START_FIELDS = {
    "command": "run",
    "config": None,  # the temporary file's path
    "registry": "reg.test:5000",
    "repository": REPO,
    "database": "127.0.0.1:5432/imageledger_prod",
    "broker": "127.0.0.1:5672/platform",
    "broker_prefix": "lab-ledger",
    "http": "127.0.0.1:0",
}


async def test_run_logs_one_start_line_in_json_without_credentials(tmp_path: Path) -> None:
    code, lines = await run_refused(tmp_path, "json")
    assert code == 1
    assert lines[-1].startswith("imageledger: error: RabbitMQ at ")  # the one error line
    events = [json.loads(line) for line in lines[:-1]]
    starts = [e for e in events if e["event"] == "imageledger run starting"]
    assert len(starts) == 1
    assert events[0] is starts[0]
    start = starts[0]
    assert start == {
        "timestamp": start["timestamp"],
        "level": "info",
        "event": "imageledger run starting",
        "logger": "imageledger",
        "version": version(),
        **START_FIELDS,
        "config": str(tmp_path / "config.yaml"),
    }
    assert "db-user" not in lines[0]  # nor a user name
    assert "amqp-user" not in lines[0]


async def test_run_logs_its_start_line_in_logfmt(tmp_path: Path) -> None:
    code, lines = await run_refused(tmp_path, "logfmt")
    assert code == 1
    start = dict(pair.split("=", 1) for pair in shlex.split(lines[0]))
    assert start["event"] == "imageledger run starting"
    assert start["version"] == version()
    for key, expected in START_FIELDS.items():
        assert start[key] == (expected or str(tmp_path / "config.yaml")), key


async def test_each_refresh_plan_and_dead_letter_logs_its_figures(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
) -> None:
    await push_repository(registry, registry_session)
    exchange = broker_settings.prefix
    with structlog.testing.capture_logs() as logs:
        async with running_worker(make_config(registry.host), broker_settings, database_url):
            await publish_raw(rabbit_connection, exchange, "node.inventory", inventory("n1", []))
            await publish_raw(rabbit_connection, exchange, "node.inventory", b"[1]")
            await publish_raw(rabbit_connection, exchange, "refresh.request", b"{}")
            await wait_until(lambda: _logged(logs, "prepulls planned"), within=20, what="a plan")
            await wait_until(lambda: _logged(logs, "message dead-lettered"), what="a dead letter")

    (refresh,) = [e for e in logs if e["event"] == "refresh completed"]
    assert refresh["registry"] == registry.host
    assert refresh["repository"] == REPO
    assert (refresh["tags"], refresh["discovered"], refresh["moved"]) == (4, 4, 0)
    assert refresh["requests"] == 5  # the tag list and 4 HEADs
    assert refresh["retries"] == 0
    assert refresh["duration_s"] > 0
    plan = next(e for e in logs if e["event"] == "prepulls planned")
    assert (plan["requested"], plan["timeouts"], plan["parked"]) == (1, 0, 0)  # 1 per node
    (dead,) = [e for e in logs if e["event"] == "message dead-lettered"]
    assert dead["routing_key"] == "node.inventory"
    assert dead["reason_class"] == "invalid"
    assert dead["attempt"] == 1
    assert dead["reason"].startswith("expected a JSON object")


def _logged(logs: Sequence[Mapping[str, Any]], event: str) -> bool:
    return any(e["event"] == event for e in logs)
