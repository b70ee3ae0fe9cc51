"""The composition root: the only part of ``worker`` that knows every adapter and wires them.

The package face: entry points import from here. ``application`` and ``runtime`` build a
worker's graph once (engine, HTTP session, registry client, broker, stores); `Operations`
gives the operator commands their use cases, each on the adapters it needs.
"""

from worker.factory.application import (
    CONFIG_ENV,
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    HTTP_TOKEN_ENV,
    METRICS_CONTENT_TYPE,
    PASSWORD_ENV,
    USERNAME_ENV,
    Application,
    Health,
    Runtime,
    application,
    broker_settings,
    http_token,
    load,
    runtime,
    utcnow,
)
from worker.factory.operations import DEFAULT_PREFIX, Operations

__all__ = [
    "CONFIG_ENV",
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_PREFIX",
    "HTTP_TOKEN_ENV",
    "METRICS_CONTENT_TYPE",
    "PASSWORD_ENV",
    "USERNAME_ENV",
    "Application",
    "Health",
    "Operations",
    "Runtime",
    "application",
    "broker_settings",
    "http_token",
    "load",
    "runtime",
    "utcnow",
]
