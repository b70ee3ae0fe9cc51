"""What a long-running command says as it starts: its version, configuration and services."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from yarl import URL

from worker.adapters.broker import amqp_url
from worker.adapters.ledger import database_url
from worker.config import Config

__all__ = ["start_fields", "version"]


def version() -> str:
    """The installed package's version ("unknown" when it is not installed)."""
    try:
        return metadata.version("imageledger")
    except metadata.PackageNotFoundError:
        return "unknown"


def start_fields(
    config_path: Path,
    config: Config,
    *,
    database: str | None = None,
    amqp: str | None = None,
    prefix: str | None = None,
) -> dict[str, str]:
    """The fields of the start line: the version, the configuration file, the source's
    registry and repository; for a command that uses a database (``database``: its URL) the
    database's host, port and name; for one that uses RabbitMQ (``prefix`` given) its host,
    port and virtual host (``amqp``: the URL, else the environment's, else the local
    default) and the name prefix. Never a user name or a password."""
    repository = config.images.repository
    fields = {
        "version": version(),
        "config": str(config_path),
        "registry": repository.registry,
        "repository": repository.repository,
    }
    if database is not None:
        fields["database"] = _database_location(database_url(database))
    if prefix is not None:
        fields["broker"] = _broker_location(amqp_url(amqp))
        fields["broker_prefix"] = prefix
    return fields


def _database_location(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(not a database URL)"
    host = parsed.host or "localhost"
    return f"{host}:{parsed.port or 5432}/{parsed.database or ''}"


def _broker_location(url: str) -> str:
    try:
        parsed = URL(url)
    except ValueError:
        return "(not an AMQP URL)"
    port = parsed.port or (5671 if parsed.scheme == "amqps" else 5672)
    return f"{parsed.host or 'localhost'}:{port}{parsed.path or '/'}"
