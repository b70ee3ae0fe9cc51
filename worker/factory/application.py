"""The worker's graph: the engine, HTTP session, registry client, broker and stores, built once."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import structlog
from attrs import frozen
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.adapters.broker import Broker, BrokerSettings, amqp_url
from worker.adapters.ledger import (
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    EventLog,
    FiguresStore,
    LedgerError,
    LedgerRefreshStore,
    LedgerStatus,
    OutboxRelay,
    SpawnerStore,
    WorkStore,
    database_url,
    make_engine,
    naming_database,
)
from worker.adapters.metrics import CONTENT_TYPE, WorkerMetrics
from worker.config import Config, ConfigError
from worker.converter import load_config
from worker.domain.copying import copy_shared
from worker.factory.sources import (
    PASSWORD_ENV,
    USERNAME_ENV,
    ImageSource,
    image_source,
    registry_client,
)
from worker.services.fresh_digests import FreshDigests
from worker.services.refresh import RefreshReport, configured_policy, refresh
from worker.services.resolve import ImageResolver
from worker.services.spawner import SpawnerCatalog, SpawnerDocuments

__all__ = [
    "CONFIG_ENV",
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "HTTP_TOKEN_ENV",
    "METRICS_CONTENT_TYPE",
    "PASSWORD_ENV",
    "USERNAME_ENV",
    "Application",
    "Health",
    "Runtime",
    "application",
    "broker_settings",
    "config_path",
    "database",
    "http_token",
    "load",
    "registry_client",
    "runtime",
    "utcnow",
]

CONFIG_ENV = "IMAGELEDGER_CONFIG"
HTTP_TOKEN_ENV = "IMAGELEDGER_HTTP_TOKEN"
METRICS_CONTENT_TYPE = CONTENT_TYPE
"""The content type of ``Runtime.scrape``'s text (Prometheus' exposition format)."""

log = structlog.get_logger("imageledger.factory")


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


def load(path: Path | None) -> Config:
    """Load the configuration named by the option or the environment (ConfigError if it
    cannot be read or does not validate)."""
    return load_config(config_path(path))


def http_token() -> str | None:
    """The bearer token the spawner API requires (``IMAGELEDGER_HTTP_TOKEN``), or None when
    it is open; set but blank is a ConfigError, not an open API."""
    token = os.environ.get(HTTP_TOKEN_ENV)
    if token is None:
        return None
    if not token.strip():
        raise ConfigError(f"{HTTP_TOKEN_ENV} is set but blank; unset it to serve without a token")
    return token.strip()


def broker_settings(config: Config, url: str | None, prefix: str) -> BrokerSettings:
    """The worker's broker settings: the URL given (else ``IMAGELEDGER_AMQP_URL``, else the
    local default) and the name prefix; batching and retries from the ``queue:`` section."""
    return copy_shared(BrokerSettings, config.queue, url=amqp_url(url), prefix=prefix)


@asynccontextmanager
async def database(url: str | None) -> AsyncIterator[AsyncEngine]:
    """An engine on the database given (else ``IMAGELEDGER_DATABASE_URL``, else the local
    default), disposed at the end; a LedgerError raised in the block names the database."""
    resolved = database_url(url)
    with naming_database(resolved):
        engine = make_engine(resolved)
        try:
            yield engine
        finally:
            await engine.dispose()


@frozen
class Application:
    """Everything one process needs, built once."""

    config: Config
    engine: AsyncEngine
    session: aiohttp.ClientSession
    source: ImageSource
    """The configured registry's clients (Docker v2, or Artifact Registry's listing)."""
    log: EventLog
    views: SpawnerCatalog
    """The spawner's domain view of the ledger (for resolving), cached per log position."""
    documents: SpawnerDocuments
    """What the spawner API serves: the stored catalog, cached per log position."""
    resolver: ImageResolver
    """Tags, references and image classes to images (the ledger's digests; HEADs through
    ``registry`` for tags it never resolved, coalesced, cached and budgeted)."""

    async def refresh_now(
        self,
        *,
        causation: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RefreshReport:
        """Run one refresh in this process (``progress`` hears the digests fetched)."""
        source = self.source.tag_source(progress)
        store = LedgerRefreshStore(self.engine, self.log, self.config.dropdown_menu)
        refresh_id = causation or f"refresh-{uuid.uuid4()}"
        return await refresh(
            source, store, self.config, refresh_id=refresh_id, clock=utcnow, causation=causation
        )

    async def record_policy(self) -> int:
        """Record the configuration's policy now if it differs from the one in force (a
        worker starting with a changed configuration); returns the events appended."""
        store = LedgerRefreshStore(self.engine, self.log, self.config.dropdown_menu)
        started = f"start-{uuid.uuid4()}"
        policy = configured_policy(self.config, utcnow())
        return await store.record([], key_prefix=started, causation=started, policy=policy)


@asynccontextmanager
async def application(
    config: Config,
    url: str | None = None,
    *,
    on_registry_request: Callable[[str, int | None], None] | None = None,
) -> AsyncIterator[Application]:
    """Build the application graph and close everything it opened; ``on_registry_request``
    hears every registry request (refreshes and resolves alike)."""
    async with database(url) as engine, aiohttp.ClientSession() as session:
        source = image_source(config, session, on_registry_request)
        store = SpawnerStore(engine)
        views = SpawnerCatalog(store, config)
        documents = SpawnerDocuments(store, config)
        heads = FreshDigests(
            source.heads,
            ttl=config.http.resolve_cache_ttl,
            per_minute=config.http.resolve_heads_per_minute,
        )
        resolver = ImageResolver(views, heads, head_unknown=source.complete_listing)
        yield Application(
            config, engine, session, source, EventLog(engine), views, documents, resolver
        )


@frozen
class Health:
    """Readiness: whether the database answers, the broker connection is up and the schema
    is at the newest migration."""

    database: bool
    broker: bool
    migrations: bool = True

    @property
    def healthy(self) -> bool:
        """All three are."""
        return self.database and self.broker and self.migrations


@frozen
class Runtime:
    """A worker process: the application plus the broker, stores, relay and metrics."""

    app: Application
    broker: Broker
    store: WorkStore
    status: LedgerStatus
    relay: OutboxRelay
    metrics: WorkerMetrics
    figures: FiguresStore

    async def health(self) -> Health:
        """The database (one query), the broker connection and the schema revision, now."""
        database = await self.status.reachable()
        migrations = database and await self.status.schema_at_head()
        return Health(database, self.broker.connected, migrations)

    async def scrape(self) -> bytes:
        """The metrics in Prometheus' text format, the ledger's gauges read from the database
        now (when it does not answer, they keep their last values), the consumers held now."""
        self.metrics.set_consumers(self.broker.consumer_counts())
        try:
            self.metrics.set_figures(await self.figures.figures(self.app.config.images.repository))
        except LedgerError as exc:
            log.warning("metrics gauges not refreshed", error=str(exc))
        return self.metrics.render()


@asynccontextmanager
async def runtime(
    config: Config, settings: BrokerSettings, url: str | None = None
) -> AsyncIterator[Runtime]:
    """Build a worker's graph (nothing connects yet); close the broker at the end."""
    metrics = WorkerMetrics()
    repository = config.images.repository
    interval = config.images.refresh_interval.total_seconds()
    metrics.set_refresh_interval(repository.registry, repository.repository, interval)
    broker = Broker(settings, metrics)
    async with application(config, url, on_registry_request=metrics.registry_request) as app:
        relay = OutboxRelay(app.engine, broker)
        status, figures = LedgerStatus(app.engine), FiguresStore(app.engine)
        try:
            yield Runtime(app, broker, WorkStore(app.log), status, relay, metrics, figures)
        finally:
            await broker.close()
