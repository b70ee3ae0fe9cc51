"""Driver errors become transient or permanent LedgerErrors (the consumer acts on the type)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from worker.adapters.ledger.database import (
    DatabaseMissingError,
    DatabaseUnavailableError,
    LedgerConflictError,
    LedgerError,
    TransientLedgerError,
    translate_errors,
)


async def _translated(error: BaseException) -> LedgerError:
    with pytest.raises(LedgerError) as caught:
        async with translate_errors("fold a batch"):
            raise error
    assert caught.value.__cause__ is error
    return caught.value


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
        sa_exc.TimeoutError("QueuePool limit reached"),
        sa_exc.InterfaceError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
        sa_exc.OperationalError("SELECT 1", {}, asyncpg.exceptions.AdminShutdownError("bye")),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_an_unreachable_database_is_transient(error: BaseException) -> None:
    translated = await _translated(error)
    assert isinstance(translated, DatabaseUnavailableError)
    assert isinstance(translated, TransientLedgerError)
    assert str(translated).startswith("cannot fold a batch: ")


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.SerializationError("could not serialize access"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_conflict_is_transient(error: BaseException) -> None:
    translated = await _translated(error)
    assert isinstance(translated, LedgerConflictError)
    assert isinstance(translated, TransientLedgerError)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key value"),
        asyncpg.exceptions.CheckViolationError("violates check constraint"),
        asyncpg.exceptions.UndefinedTableError('relation "ledger.events" does not exist'),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_bug_or_bad_data_is_permanent(error: BaseException) -> None:
    translated = await _translated(error)
    assert not isinstance(translated, TransientLedgerError)


async def test_a_missing_database_is_named() -> None:
    translated = await _translated(
        asyncpg.exceptions.InvalidCatalogNameError('database "x" does not exist')
    )
    assert isinstance(translated, DatabaseMissingError)


async def test_other_errors_pass_through() -> None:
    with pytest.raises(ValueError, match="a bug"):
        async with translate_errors("fold a batch"):
            raise ValueError("a bug")
