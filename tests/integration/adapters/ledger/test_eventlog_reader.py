"""The read-only role: it reads schema dashboard and nothing else, and cannot write."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support.events import T0
from worker.adapters.ledger.eventlog import EventLog
from worker.domain.events import NodeSeen

VIEWS = ("tags", "images", "tag_history", "nodes", "node_images", "prepull_targets",
         "prepull_status", "prepull_queue", "menu", "refreshes", "image_rollout")  # fmt: skip


async def test_the_reader_reads_dashboard(event_log: EventLog, reader_login: str) -> None:
    await event_log.append([NodeSeen(node="n1", eligible=True, occurred_at=T0)])
    db = await asyncpg.connect(reader_login)
    try:
        for view in VIEWS:
            await db.fetch(f"SELECT * FROM dashboard.{view}")
        assert (await db.fetchrow("SELECT node, eligible FROM dashboard.nodes"))["node"] == "n1"
        await db.fetch("SELECT * FROM dashboard.tag_digest_at('w_2077_43', now())")
        await db.fetch("SELECT * FROM dashboard.node_images_at('n1', now())")
    finally:
        await db.close()


REFUSED = (
    "SELECT * FROM ledger.events",
    "SELECT * FROM ledger.nodes",
    "SELECT * FROM public.alembic_version",
    "INSERT INTO ledger.events (position) VALUES (1)",
    "INSERT INTO dashboard.nodes (node) VALUES ('x')",
    "UPDATE dashboard.nodes SET comment = 'x'",
    "DELETE FROM dashboard.refreshes",
    "CREATE TABLE dashboard.mine (x int)",
    "CREATE TABLE public.mine (x int)",
    "TRUNCATE ledger.events",
)


async def test_the_reader_is_refused_everything_else(reader_login: str) -> None:
    db = await asyncpg.connect(reader_login)
    try:
        for statement in REFUSED:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await db.execute(statement)
    finally:
        await db.close()
