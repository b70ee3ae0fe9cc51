"""Image registries: the Docker registry HTTP API v2 (client, authentication, wire parsing,
the tag source) and Google Artifact Registry (its listing, tokens and tag source).

The package face: callers outside it import from here, never from its modules.
"""

from worker.adapters.registry.artifact import (
    ArtifactRegistryLister,
    ArtifactRegistryTagSource,
    GoogleHeads,
)
from worker.adapters.registry.client import ManifestInfo, RegistryClient, RequestObserver
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
from worker.adapters.registry.google_tokens import (
    CLOUD_PLATFORM_SCOPE,
    GOOGLE_DOCKER_USER,
    GoogleAccessTokens,
    GoogleDockerLogin,
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
    "CLOUD_PLATFORM_SCOPE",
    "GOOGLE_DOCKER_USER",
    "ArtifactRegistryLister",
    "ArtifactRegistryTagSource",
    "DockerCredentialStore",
    "GoogleAccessTokens",
    "GoogleDockerLogin",
    "GoogleHeads",
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
    "RequestObserver",
    "RequestStats",
    "RequestStatsSnapshot",
    "RetryBudget",
]
