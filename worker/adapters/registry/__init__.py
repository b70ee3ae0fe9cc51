"""The Docker registry (HTTP API v2): client, authentication, wire parsing and the tag source.

The package face: callers outside it import from here, never from its modules.
"""

from worker.adapters.registry.client import ManifestInfo, RegistryClient
from worker.adapters.registry.credentials import DockerCredentialStore, RegistryCredentials
from worker.adapters.registry.errors import (
    ManifestUnknownError,
    RegistryAuthError,
    RegistryConnectionError,
    RegistryCredentialsError,
    RegistryError,
    RegistryInvalidUrlError,
    RegistryProtocolError,
    RegistryRateLimitedError,
    RegistryRetryBudgetExhaustedError,
    RegistryServerError,
    RegistryTimeoutError,
    RegistryTlsError,
    RepositoryUnknownError,
)
from worker.adapters.registry.source import RegistryTagSource
from worker.adapters.registry.stats import (
    RegistryLimits,
    RequestCount,
    RequestStats,
    RequestStatsSnapshot,
    RetryBudget,
)

__all__ = [
    "DockerCredentialStore",
    "ManifestInfo",
    "ManifestUnknownError",
    "RegistryAuthError",
    "RegistryClient",
    "RegistryConnectionError",
    "RegistryCredentials",
    "RegistryCredentialsError",
    "RegistryError",
    "RegistryInvalidUrlError",
    "RegistryLimits",
    "RegistryProtocolError",
    "RegistryRateLimitedError",
    "RegistryRetryBudgetExhaustedError",
    "RegistryServerError",
    "RegistryTagSource",
    "RegistryTimeoutError",
    "RegistryTlsError",
    "RepositoryUnknownError",
    "RequestCount",
    "RequestStats",
    "RequestStatsSnapshot",
    "RetryBudget",
]
