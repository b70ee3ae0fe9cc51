"""The Docker registry (HTTP API v2): client, authentication, wire parsing and the tag source.

The package face: callers outside it import from here, never from its modules.
"""

from worker.adapters.registry.client import RegistryClient
from worker.adapters.registry.credentials import DockerCredentialStore, RegistryCredentials
from worker.adapters.registry.errors import RegistryError
from worker.adapters.registry.source import RegistryTagSource

__all__ = [
    "DockerCredentialStore",
    "RegistryClient",
    "RegistryCredentials",
    "RegistryError",
    "RegistryTagSource",
]
