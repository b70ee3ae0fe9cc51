"""Fixtures for integration tests against real services."""

from __future__ import annotations

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
    "basic_registry",
    "fault_proxy",
    "registry",
    "registry_session",
    "tls_registry",
    "token_registry",
    "token_server",
]
