"""Throw-away PostgreSQL databases for tests: one fresh, migrated database per test.

A session builds one migrated template database; each test gets ``CREATE DATABASE ...
TEMPLATE`` of it under a unique name (from the ``postgres`` maintenance database) and drops
it afterwards. ``IMAGELEDGER_TEST_ADMIN_URL`` overrides the maintenance URL.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.ledger import migrate
from worker.adapters.ledger.database import make_engine
from worker.adapters.ledger.eventlog import EventLog

__all__ = [
    "ADMIN_URL",
    "READER_LOGIN",
    "create_database",
    "database_url",
    "drop_database",
    "empty_database_url",
    "engine",
    "event_log",
    "migrated_template",
    "raw_url",
    "reader_login",
    "url_for",
]

ADMIN_URL = os.environ.get(
    "IMAGELEDGER_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
READER_LOGIN = "imageledger_reader_test"
"""A login role, member of ``imageledger_reader``, for connecting as the reader in tests."""


def url_for(name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the test server."""
    return ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + (
        f"/{name}"
    )


def raw_url(url: str) -> str:
    """A SQLAlchemy URL as asyncpg accepts it."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def create_database(name: str, template: str | None = None) -> str:
    """Create database ``name`` (optionally from a template); returns its URL."""
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        suffix = f' TEMPLATE "{template}"' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{suffix}')
    finally:
        await admin.close()
    return url_for(name)


async def drop_database(name: str) -> None:
    """Drop database ``name``, closing any connection left to it."""
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def _build_template(name: str) -> None:
    url = await create_database(name)
    engine = make_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def migrated_template() -> Iterator[str]:
    """The name of a migrated database that per-test databases are copied from."""
    name = _unique("il_template")
    asyncio.run(_build_template(name))
    yield name
    asyncio.run(drop_database(name))


@pytest.fixture
async def database_url(migrated_template: str) -> AsyncIterator[str]:
    """The URL of a fresh database of this test's own, migrated to head."""
    name = _unique("il_test")
    url = await create_database(name, template=migrated_template)
    yield url
    await drop_database(name)


@pytest.fixture
async def empty_database_url() -> AsyncIterator[str]:
    """The URL of a fresh, empty database (not migrated)."""
    name = _unique("il_empty")
    url = await create_database(name)
    yield url
    await drop_database(name)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An AsyncEngine on this test's database."""
    created = make_engine(database_url)
    yield created
    await created.dispose()


@pytest.fixture
def event_log(engine: AsyncEngine) -> EventLog:
    """The event log of this test's database."""
    return EventLog(engine)


_CREATE_LOGIN = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{READER_LOGIN}') THEN
        CREATE ROLE {READER_LOGIN} LOGIN IN ROLE imageledger_reader;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$
"""


@pytest.fixture
async def reader_login(database_url: str) -> str:
    """The URL of this test's database for a login role that is a member of the reader role.

    Roles are cluster-wide: the login role is created once (if absent) and kept; grants
    stay per database, so each test database is tested on its own.
    """
    admin = await asyncpg.connect(raw_url(database_url))
    try:
        await admin.execute(_CREATE_LOGIN)
    finally:
        await admin.close()
    base, _, rest = raw_url(database_url).partition("://")
    host = rest.split("@", 1)[-1]
    return f"{base}://{READER_LOGIN}@{host}"


async def postgres_ready() -> bool:
    """Whether the test server accepts connections."""
    try:
        connection = await asyncpg.connect(ADMIN_URL, timeout=2)
    except (OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


async def pg_ctlcluster(action: str, within: float = 60) -> None:
    """``pg_ctlcluster`` ACTION (stop, start, restart) on this machine's cluster; fails the
    test unless it succeeds within ``within`` seconds."""
    process = await asyncio.create_subprocess_exec(
        "pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", action
    )
    code = await asyncio.wait_for(process.wait(), within)
    assert code == 0, f"pg_ctlcluster {action} failed"
