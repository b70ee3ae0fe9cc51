"""Migrations: upgrade to head, models agree (alembic check), every step down and up again."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.support.database import raw_url
from worker.adapters.ledger import migrate
from worker.adapters.ledger.database import make_engine

VIEWS = (
    "tags", "images", "tag_history", "nodes", "node_images", "prepull_targets",
    "prepull_status", "prepull_queue", "menu", "refreshes", "image_rollout",
)  # fmt: skip


async def _schema(url: str) -> dict[str, list[str]]:
    db = await asyncpg.connect(raw_url(url))
    try:
        relations = await db.fetch(
            "SELECT n.nspname, c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname IN ('ledger', 'dashboard') AND c.relkind IN ('r', 'v', 'i')"
            " ORDER BY 1, 2"
        )
        functions = await db.fetch(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'dashboard' ORDER BY 1"
        )
    finally:
        await db.close()
    out: dict[str, list[str]] = {}
    for r in relations:
        out.setdefault(r[0], []).append(r[1])
    out["functions"] = [r[0] for r in functions]
    return out


async def test_upgrade_head_and_models_agree(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        assert await migrate.current_revision(engine) is None
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.revisions()[-1]
        await migrate.check(engine)
    finally:
        await engine.dispose()
    schema = await _schema(empty_database_url)
    assert set(VIEWS) <= set(schema["dashboard"])
    assert {"image_for_tag", "node_images_at", "tag_digest_at"} <= set(schema["functions"])
    assert {"events", "tags", "nodes", "node_images", "outbox", "messages"} <= set(schema["ledger"])


async def test_stairway_every_revision_up_down_up(empty_database_url: str) -> None:
    """Each revision upgrades, downgrades to its parent and upgrades again."""
    engine = make_engine(empty_database_url)
    revisions = migrate.revisions()
    assert revisions[0] == "0001_ledger"
    try:
        previous = "base"
        for revision in revisions:
            await migrate.upgrade(engine, revision)
            after_up = await _schema(empty_database_url)
            await migrate.downgrade(engine, previous)
            await migrate.upgrade(engine, revision)
            assert await _schema(empty_database_url) == after_up
            previous = revision
        await migrate.check(engine)
        await migrate.downgrade(engine, "base")
        assert await _schema(empty_database_url) == {"functions": []}
    finally:
        await engine.dispose()


def test_view_files_are_versioned_and_present() -> None:
    views = migrate.migrations_dir() / "views"
    for name in (*VIEWS, "tag_digest_at", "node_images_at", "image_for_tag"):
        assert (views / f"{name}.v1.sql").is_file()
    assert all(p.name.count(".v") == 1 for p in Path(views).glob("*.sql"))


async def test_a_missing_database_is_a_clear_error() -> None:
    from tests.support.database import url_for
    from worker.adapters.ledger.database import DatabaseMissingError

    engine = make_engine(url_for("il_no_such_database"))
    try:
        with pytest.raises(DatabaseMissingError, match='database "il_no_such_database"'):
            await migrate.upgrade(engine)
    finally:
        await engine.dispose()
