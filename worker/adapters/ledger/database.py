"""PostgreSQL connection setup and the translation of driver errors into ours."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from worker.domain.errors import ImageLedgerError, TransientError

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "SERVER_SETTINGS",
    "DatabaseMissingError",
    "DatabaseUnavailableError",
    "LedgerConflictError",
    "LedgerError",
    "TransientLedgerError",
    "database_url",
    "make_engine",
    "naming_database",
    "safe_url",
    "translate_errors",
]

DATABASE_URL_ENV = "IMAGELEDGER_DATABASE_URL"
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/imageledger"


class LedgerError(ImageLedgerError):
    """The event log or its database failed; the message is one readable line."""

    http_status = 503
    error_code = "database_unavailable"


class TransientLedgerError(LedgerError, TransientError):
    """The database could not do the work now but will later: retry the same work as is
    (nothing is wrong with it). Any other LedgerError is permanent for that work."""


class DatabaseUnavailableError(TransientLedgerError):
    """The database server cannot be reached, refused the connection, lost it, or is
    shutting down or starting up."""


class LedgerConflictError(TransientLedgerError):
    """The transaction lost a serialization conflict or a deadlock; it may be run again."""


class DatabaseMissingError(DatabaseUnavailableError):
    """The server is up but the database does not exist."""


@contextmanager
def naming_database(url: str) -> Iterator[None]:
    """Make a LedgerError raised inside name the database it concerns (without password),
    as an operator needs to read it; one whose message names it already passes as is."""
    try:
        yield
    except LedgerError as exc:
        where = safe_url(url)
        if where in str(exc):
            raise
        raise type(exc)(f"{exc} ({where})") from exc


def database_url(url: str | None = None) -> str:
    """The URL given, else ``IMAGELEDGER_DATABASE_URL``, else the local default."""
    return url or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "<invalid database URL>"


MAX_CACHED_STATEMENT = 64 * 1024
"""asyncpg prepares and caches statements up to this many characters (its default, 15 KiB,
is less than the append statement, which would then be parsed again on every append)."""

SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}
"""Session settings of every connection. asyncpg prepares and caches each statement, and
PostgreSQL would switch a cached statement to a generic plan after five runs; the fold's
position ranges and batch sizes vary by orders of magnitude, and a generic plan chosen while
the tables were small degrades as they grow (measured: worker throughput fell from 5,800 to
1,750 messages/s over 60,000 pod completions; with custom plans it stays at 5,800). The one
exception is the append statement, written so that its plan cannot degrade
(``worker.adapters.ledger.eventlog.GENERIC_PLAN``)."""


def make_engine(url: str, **options: Any) -> AsyncEngine:
    """An AsyncEngine on asyncpg; ``postgresql://`` URLs get the asyncpg driver."""
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as exc:
        raise LedgerError(f"invalid database URL {safe_url(url)!r}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername != "postgresql+asyncpg":
        raise LedgerError(
            f"unsupported database URL {safe_url(url)!r} (expected postgresql+asyncpg://...)"
        )
    connect_args = dict(options.pop("connect_args", {}))
    connect_args.setdefault("max_cacheable_statement_size", MAX_CACHED_STATEMENT)
    connect_args["server_settings"] = {**SERVER_SETTINGS, **connect_args.get("server_settings", {})}
    engine = create_async_engine(parsed, connect_args=connect_args, **options)
    event.listen(engine.sync_engine, "checkout", _discard_closed)
    return engine


def _discard_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """On pool checkout, replace a connection the server closed (a restart, a terminated
    backend): asyncpg notices the closed socket as soon as it happens.

    This stands in for SQLAlchemy's ``pool_pre_ping``, which spends three round trips
    (BEGIN, a query, ROLLBACK: 1.3 ms here) on every checkout, that is on every append. A
    connection that breaks between the check and its use fails its statement, which the
    caller retries (``TransientLedgerError``) on a connection this check then replaces.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise sa_exc.DisconnectionError("the database closed this connection")


def _sqlstate(error: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(state, str):
            return state
        current = getattr(current, "orig", None) or current.__cause__
    return None


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return text[0] if text else type(error).__name__


_UNAVAILABLE_CLASSES = ("08", "28", "53", "57")
"""SQLSTATE classes: connection exception, authorization, insufficient resources (too
many connections), operator intervention (shutting down, starting up, cancelled)."""
_CONFLICTS = ("40001", "40P01")
"""serialization_failure, deadlock_detected."""
_CLOSED = ("connection is closed", "connection was closed")


def _disconnected(error: BaseException) -> bool:
    """Whether a driver error says the connection is gone (no SQLSTATE to go by)."""
    if getattr(error, "connection_invalidated", False):
        return True
    text = str(getattr(error, "orig", None) or error)
    return any(marker in text for marker in _CLOSED)


@asynccontextmanager
async def translate_errors(what: str) -> AsyncIterator[None]:
    """Turn driver and connection errors raised inside into LedgerError subclasses:
    ``TransientLedgerError`` (``DatabaseUnavailableError``, ``LedgerConflictError``) when
    the same work will succeed once the database answers again, ``LedgerError`` otherwise."""
    try:
        yield
    except LedgerError:
        raise
    except (OSError, TimeoutError, sa_exc.TimeoutError) as exc:
        raise DatabaseUnavailableError(f"cannot {what}: database unreachable: {exc}") from exc
    except (sa_exc.DBAPIError, asyncpg.PostgresError) as exc:
        state = _sqlstate(exc)
        if state == "3D000":
            raise DatabaseMissingError(f"cannot {what}: {_first_line(exc)}") from exc
        if (state is not None and state[:2] in _UNAVAILABLE_CLASSES) or (
            state is None and _disconnected(exc)
        ):
            raise DatabaseUnavailableError(f"cannot {what}: {_first_line(exc)}") from exc
        if state in _CONFLICTS:
            raise LedgerConflictError(f"cannot {what}: {_first_line(exc)}") from exc
        if state in ("42P01", "3F000"):
            hint = "the schema is missing: run `imageledger migrate` first"
            raise LedgerError(f"cannot {what}: {_first_line(exc)} ({hint})") from exc
        raise LedgerError(f"cannot {what}: {_first_line(exc)}") from exc
    except (sa_exc.SQLAlchemyError, asyncpg.InterfaceError) as exc:
        if _disconnected(exc):
            raise DatabaseUnavailableError(f"cannot {what}: {_first_line(exc)}") from exc
        raise LedgerError(f"cannot {what}: {_first_line(exc)}") from exc
