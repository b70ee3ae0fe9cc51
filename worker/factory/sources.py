"""The configured image source's clients: a Docker registry, or Google Artifact Registry.

Either way the refresh gets a tag source behind the same port (``TagSource``) and the
resolver gets HEADs behind ``DigestSource``; only what is behind them differs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import aiohttp
from attrs import frozen

from worker.adapters.registry import (
    ArtifactRegistryLister,
    ArtifactRegistryTagSource,
    DockerCredentialStore,
    GoogleAccessTokens,
    GoogleDockerLogin,
    GoogleHeads,
    RegistryClient,
    RegistryCredentials,
    RegistryTagSource,
    RequestObserver,
)
from worker.config import Config, DockerSource, GoogleSource
from worker.services.fresh_digests import DigestSource
from worker.services.refresh import TagSource

__all__ = ["PASSWORD_ENV", "USERNAME_ENV", "ImageSource", "image_source", "registry_client"]

USERNAME_ENV = "IMAGELEDGER_REGISTRY_USERNAME"
PASSWORD_ENV = "IMAGELEDGER_REGISTRY_PASSWORD"


def _credentials(config: Config) -> RegistryCredentials | None:
    user, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
    if user and password:
        return RegistryCredentials(user, password)
    path = config.images.docker_credentials_path
    if path:
        return DockerCredentialStore.from_file(Path(path)).lookup(config.images.repository.registry)
    return None


def registry_client(
    config: Config,
    session: aiohttp.ClientSession,
    on_request: RequestObserver | None = None,
    tokens: GoogleAccessTokens | None = None,
) -> RegistryClient:
    """The Docker v2 client of the configured registry, with the configured credentials,
    TLS and plain-http settings (RegistryCredentialsError when the credentials cannot be
    read); ``on_request`` hears every request it sends. For a Google source: the host of
    ``dockerEndpoint`` (``{location}-docker.pkg.dev`` by default) with ``tokens``' access
    token as ``oauth2accesstoken``'s password."""
    source = config.images.source
    if isinstance(source, GoogleSource):
        host, insecure = source.docker_host
        login = GoogleDockerLogin(tokens if tokens is not None else GoogleAccessTokens())
        return RegistryClient(
            session, host, insecure=insecure, credentials=login, on_request=on_request
        )
    return RegistryClient(
        session,
        source.registry,
        insecure=source.insecure,
        credentials=_credentials(config),
        ca_bundle=source.ca_bundle,
        on_request=on_request,
    )


@frozen
class ImageSource:
    """The clients of the configured source, built once per process."""

    config: Config
    registry: RegistryClient
    """The Docker v2 client (tag lists of a Docker source; HEADs of either)."""
    lister: ArtifactRegistryLister | None = None
    """A Google source's listing (None for a Docker source)."""
    tokens: GoogleAccessTokens | None = None

    @property
    def complete_listing(self) -> bool:
        """Whether a refresh lists every tag with its digest (Artifact Registry), so that
        only a tag pushed since the last refresh needs a HEAD to be resolved."""
        return self.lister is not None

    def tag_source(self, progress: Callable[[int, int], None] | None = None) -> TagSource:
        """A new tag source for one refresh (its own costs and retry budget)."""
        repository = self.config.images.repository
        if self.lister is not None:
            return ArtifactRegistryTagSource(self.lister, repository, progress)
        return RegistryTagSource(self.registry, repository, progress)

    def heads(self) -> DigestSource:
        """HEADs for the resolver, on the Docker v2 API (a Google token renewed first)."""
        heads = RegistryTagSource(self.registry, self.config.images.repository)
        return heads if self.tokens is None else GoogleHeads(heads, self.tokens)


def image_source(
    config: Config, session: aiohttp.ClientSession, on_request: RequestObserver | None = None
) -> ImageSource:
    """The configured source's clients; a Google source's credentials are looked up (as
    Application Default Credentials) on first use, not here."""
    source = config.images.source
    if isinstance(source, DockerSource):
        return ImageSource(config, registry_client(config, session, on_request))
    tokens = GoogleAccessTokens()
    parent = (source.project_id, source.location, source.repository)
    lister = ArtifactRegistryLister.connect(
        session, source.endpoint, parent, tokens, on_request=on_request
    )
    client = registry_client(config, session, on_request, tokens)
    return ImageSource(config, client, lister, tokens)
