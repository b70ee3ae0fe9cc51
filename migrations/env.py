"""Alembic environment: runs on a connection handed in by the ledger's migrate, or on its own.

``worker.adapters.ledger.migrate`` passes a connection in ``config.attributes["connection"]``
(from an AsyncEngine, inside one transaction). Run by the ``alembic`` command instead, the database
URL comes from ``sqlalchemy.url`` or ``IMAGELEDGER_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import Connection

from worker.adapters.ledger.database import database_url, make_engine
from worker.adapters.ledger.schema import SCHEMA, metadata

config = context.config


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Compare only our own schema (``dashboard`` holds views, not modelled tables)."""
    if type_ == "schema":
        return name == SCHEMA
    return True


def _configure(**options: Any) -> None:
    context.configure(
        target_metadata=metadata,
        include_schemas=True,
        include_name=include_name,
        compare_type=True,
        **options,
    )


def run_on(connection: Connection) -> None:
    """Run the migrations on a connection (in its transaction, if it has one)."""
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    """Connect with our own engine and run the migrations."""
    engine = make_engine(config.get_main_option("sqlalchemy.url") or database_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_on)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    _configure(
        url=config.get_main_option("sqlalchemy.url") or database_url(),
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    run_on(connection)
else:
    asyncio.run(run_online())
