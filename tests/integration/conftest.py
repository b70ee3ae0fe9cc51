"""Fixtures for integration tests against real services."""

from __future__ import annotations

from tests.support.database import (
    database_url,
    empty_database_url,
    engine,
    event_log,
    migrated_template,
    reader_login,
)
from tests.support.rabbit import amqp_url, broker, broker_settings, rabbit_connection
from tests.support.registry_fixtures import (
    basic_registry,
    fault_proxy,
    registry,
    registry_session,
    tls_registry,
    token_registry,
    token_server,
)

__all__ = [
    "amqp_url",
    "basic_registry",
    "broker",
    "broker_settings",
    "database_url",
    "empty_database_url",
    "engine",
    "event_log",
    "fault_proxy",
    "migrated_template",
    "rabbit_connection",
    "reader_login",
    "registry",
    "registry_session",
    "tls_registry",
    "token_registry",
    "token_server",
]
