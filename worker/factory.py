"""The composition root: builds the engine, HTTP session and clients once, and wires them."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from attrs import frozen
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.broker import Broker, BrokerSettings
from worker.adapters.ledger import (
    EventLog,
    LedgerRefreshStore,
    LedgerStatus,
    OutboxRelay,
    SpawnerStore,
    WorkStore,
    database_url,
    make_engine,
)
from worker.adapters.metrics import WorkerMetrics
from worker.adapters.registry import (
    DockerCredentialStore,
    RegistryClient,
    RegistryCredentials,
    RegistryTagSource,
)
from worker.config import Config, ConfigError, DockerSource
from worker.converter import load_config
from worker.services.refresh import RefreshReport, refresh
from worker.services.resolve import ImageResolver
from worker.services.spawner import SpawnerViews

__all__ = [
    "CONFIG_ENV",
    "Application",
    "Runtime",
    "application",
    "broker_settings",
    "config_path",
    "runtime",
    "utcnow",
]

CONFIG_ENV = "IMAGELEDGER_CONFIG"
USERNAME_ENV = "IMAGELEDGER_REGISTRY_USERNAME"
PASSWORD_ENV = "IMAGELEDGER_REGISTRY_PASSWORD"


def utcnow() -> datetime:
    """The clock of the process (services receive it as a value)."""
    return datetime.now(tz=UTC)


def config_path(given: Path | None) -> Path:
    """The configuration file: the option, else ``IMAGELEDGER_CONFIG``."""
    if given is not None:
        return given
    env = os.environ.get(CONFIG_ENV)
    if not env:
        raise ConfigError(f"no configuration file: pass --config or set {CONFIG_ENV}")
    return Path(env)


def broker_settings(config: Config, url: str, prefix: str) -> BrokerSettings:
    """The worker's broker settings: connection and names given, batching and retries from
    the ``queue:`` section."""
    queue = config.queue
    return BrokerSettings(
        url=url,
        prefix=prefix,
        prefetch=queue.prefetch,
        batch_size=queue.batch_size,
        batch_timeout=queue.batch_timeout,
        max_attempts=queue.max_attempts,
        retry_delay=queue.retry_delay,
        max_retry_delay=queue.max_retry_delay,
        delivery_limit=queue.delivery_limit,
    )


def _credentials(config: Config) -> RegistryCredentials | None:
    user, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
    if user and password:
        return RegistryCredentials(user, password)
    path = config.images.docker_credentials_path
    if path:
        return DockerCredentialStore.from_file(Path(path)).lookup(config.images.repository.registry)
    return None


@frozen
class Application:
    """Everything one process needs, built once."""

    config: Config
    engine: AsyncEngine
    session: aiohttp.ClientSession
    registry: RegistryClient
    log: EventLog
    views: SpawnerViews
    """The spawner's domain view of the ledger, cached per log position."""
    resolver: ImageResolver
    """Tags, references and image classes to images (fresh HEADs through ``registry``)."""

    async def refresh_now(
        self,
        *,
        causation: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RefreshReport:
        """Run one refresh in this process (``progress`` hears the digests fetched)."""
        source = RegistryTagSource(self.registry, self.config.images.repository, progress)
        store = LedgerRefreshStore(self.engine, self.log, self.config.dropdown_menu)
        refresh_id = causation or f"refresh-{uuid.uuid4()}"
        return await refresh(
            source, store, self.config, refresh_id=refresh_id, clock=utcnow, causation=causation
        )


@asynccontextmanager
async def application(config: Config, url: str | None = None) -> AsyncIterator[Application]:
    """Build the application graph and close everything it opened."""
    source = config.images.source
    insecure = isinstance(source, DockerSource) and source.insecure
    ca_bundle = source.ca_bundle if isinstance(source, DockerSource) else None
    engine = make_engine(database_url(url))
    try:
        async with aiohttp.ClientSession() as session:
            client = RegistryClient(
                session,
                config.images.repository.registry,
                insecure=insecure,
                credentials=_credentials(config),
                ca_bundle=ca_bundle,
            )
            views = SpawnerViews(SpawnerStore(engine), config)
            repository = config.images.repository
            resolver = ImageResolver(views, lambda: RegistryTagSource(client, repository))
            yield Application(config, engine, session, client, EventLog(engine), views, resolver)
    finally:
        await engine.dispose()


@frozen
class Runtime:
    """A worker process: the application plus the broker, stores, relay and metrics."""

    app: Application
    broker: Broker
    store: WorkStore
    status: LedgerStatus
    relay: OutboxRelay
    metrics: WorkerMetrics


@asynccontextmanager
async def runtime(
    config: Config, settings: BrokerSettings, url: str | None = None
) -> AsyncIterator[Runtime]:
    """Build a worker's graph (nothing connects yet); close the broker at the end."""
    metrics = WorkerMetrics()
    broker = Broker(settings, metrics)
    async with application(config, url) as app:
        relay = OutboxRelay(app.engine, broker)
        try:
            yield Runtime(app, broker, WorkStore(app.log), LedgerStatus(app.engine), relay, metrics)
        finally:
            await broker.close()


def load(path: Path | None) -> Config:
    """Load the configuration named by the option or the environment."""
    return load_config(config_path(path))
