"""The composition root: the only part of ``worker`` that knows every adapter and wires them.

The package face: entry points import from here. ``application`` and ``runtime`` build a
worker's graph once (engine, HTTP session, registry client, broker, stores); `Operations`
gives the operator commands their use cases, each on the adapters it needs; ``bridge_runtime``
builds the Kubernetes bridge's graph.
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
    config_path,
    http_token,
    load,
    runtime,
    utcnow,
)
from worker.factory.bridge import (
    BridgeHealth,
    BridgeRuntime,
    bridge_runtime,
    bridge_settings,
    kubeconfig,
    pod_settings,
)
from worker.factory.checks import Check, run_checks
from worker.factory.console import Console
from worker.factory.operations import DEFAULT_PREFIX, Operations, RefreshRequest
from worker.factory.startup import start_fields, version
from worker.factory.stopping import connect_unless_stopped, unless_stopped

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
    "BridgeHealth",
    "BridgeRuntime",
    "Check",
    "Console",
    "Health",
    "Operations",
    "RefreshRequest",
    "Runtime",
    "application",
    "bridge_runtime",
    "bridge_settings",
    "broker_settings",
    "config_path",
    "connect_unless_stopped",
    "http_token",
    "kubeconfig",
    "load",
    "pod_settings",
    "run_checks",
    "runtime",
    "start_fields",
    "unless_stopped",
    "utcnow",
    "version",
]
