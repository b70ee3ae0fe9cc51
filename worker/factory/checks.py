"""``imageledger check``: the configuration, the database, the broker, its workers and the
registry, each with one verdict and, when it fails, what to do."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
from attrs import frozen
from sqlalchemy.engine import make_url

from worker.adapters.broker import BrokerError, TopologyState, amqp_url, probe_topology
from worker.adapters.ledger import (
    DATABASE_URL_ENV,
    DatabaseMissingError,
    LedgerError,
    current_revision,
    database_url,
    make_engine,
    revisions,
    safe_url,
)
from worker.adapters.registry import (
    RegistryAuthError,
    RegistryConnectionError,
    RegistryCredentialsError,
    RegistryError,
    RegistryTlsError,
    RepositoryUnknownError,
)
from worker.config import Config, ConfigError, GoogleSource
from worker.domain.errors import SourceUnavailableError
from worker.factory.application import (
    CONFIG_ENV,
    PASSWORD_ENV,
    USERNAME_ENV,
    config_path,
    load,
    registry_client,
)
from worker.factory.sources import image_source

__all__ = ["Check", "run_checks"]

TIMEOUT = 30.0
"""Seconds each check may take (the registry client retries before it gives up)."""
PREFIX_ENV = "IMAGELEDGER_BROKER_PREFIX"


@frozen
class Check:
    """One verdict: what was looked at, what was found and, on failure, what to do."""

    name: str
    ok: bool
    found: str
    fix: str | None = None


def check_config(given: Path | None) -> tuple[Check, Config | None]:
    """Read and validate the configuration."""
    try:
        path = config_path(given)
        config = load(path)
    except ConfigError as exc:
        fix = (
            f"pass --config FILE or set {CONFIG_ENV}"
            if given is None and not os.environ.get(CONFIG_ENV)
            else "fix the key named (camelCase or snake_case; a Phalanx values file is read "
            "from controller.config)"
        )
        return Check("config", False, str(exc), fix), None
    images = config.images
    counts = f"{images.num_releases}/{images.num_weeklies}/{images.num_dailies}"
    found = f"{path}: repository {images.repository}, releases/weeklies/dailies {counts}"
    return Check("config", True, found), config


def createdb_command(url: str) -> str:
    """The ``createdb`` command line that creates the database of ``url``."""
    parsed = make_url(url)
    options = [f"-h {parsed.host}" if parsed.host else "", f"-p {parsed.port}" if parsed.port
               else "", f"-U {parsed.username}" if parsed.username else ""]  # fmt: skip
    return " ".join(["createdb", *filter(None, options), parsed.database or "imageledger"])


async def check_database(url: str | None) -> Check:
    """Connect and compare the schema's revision with the code's head revision."""
    resolved = database_url(url)
    where = safe_url(resolved)
    again = f"is PostgreSQL running there and the URL right? (--database-url or {DATABASE_URL_ENV})"
    try:
        engine = make_engine(resolved, connect_args={"timeout": 10})
    except LedgerError as exc:
        return Check("database", False, str(exc), f"fix --database-url or {DATABASE_URL_ENV}")
    try:
        head = revisions()[-1]
        at = await current_revision(engine)
    except DatabaseMissingError:
        fix = f"create it: {createdb_command(resolved)}; then run imageledger migrate"
        return Check("database", False, f"{where}: the database does not exist", fix)
    except LedgerError as exc:
        return Check("database", False, f"{where}: {exc}", again)
    finally:
        await engine.dispose()
    if at != head:
        state = "has no schema yet" if at is None else f"is at revision {at}, not {head}"
        return Check("database", False, f"{where} {state}", "run imageledger migrate")
    return Check("database", True, f"{where}: schema at the head revision ({head})")


def _workers(state: TopologyState, prefix: str) -> Check:
    wrong = f"or is --prefix / {PREFIX_ENV} ({prefix}) not the workers' prefix?"
    if state.missing:
        found = f"prefix {prefix}: missing {', '.join(state.missing)}"
        fix = f"start imageledger run with this prefix (it declares them), {wrong}"
        return Check("workers", False, found, fix)
    if state.idle_queues:
        found = f"prefix {prefix}: no worker consumes {', '.join(state.idle_queues)}"
        return Check("workers", False, found, f"start imageledger run; {wrong}")
    consumers = ", ".join(f"{q.name} {q.consumers}" for q in state.work_queues)
    found = (f"prefix {prefix}: consumers {consumers}; {state.dead_queue.messages} dead "
             f"letter(s) in {state.dead_queue.name}")  # fmt: skip
    return Check("workers", True, found)


async def check_broker(url: str | None, prefix: str) -> list[Check]:
    """Reach RabbitMQ, then look for the prefix's exchange and queues and their consumers."""
    try:
        state = await asyncio.wait_for(probe_topology(amqp_url(url), prefix), TIMEOUT)
    except (BrokerError, TimeoutError) as exc:
        found = str(exc) or f"no answer within {TIMEOUT:.0f} s"
        fix = "is RabbitMQ running and the URL right? (--amqp-url or IMAGELEDGER_AMQP_URL)"
        skipped = Check("workers", False, "not checked: the broker did not answer", fix)
        return [Check("broker", False, found, fix), skipped]
    return [Check("broker", True, f"RabbitMQ at {state.url} answers"), _workers(state, prefix)]


def _credentials(config: Config) -> str:
    if os.environ.get(USERNAME_ENV) and os.environ.get(PASSWORD_ENV):
        return f"credentials from {USERNAME_ENV}"
    path = config.images.docker_credentials_path
    return f"credentials from {path}" if path else "anonymous: no credentials"


def _registry_fix(exc: RegistryError, config: Config) -> str:
    repository = config.images.repository
    if isinstance(exc, RegistryCredentialsError):
        return "fix images.dockerCredentialsPath (a .dockerconfigjson pull secret)"
    if isinstance(exc, RegistryAuthError):
        return (f"give credentials that may pull {repository}: {USERNAME_ENV} and {PASSWORD_ENV}, "
                "or images.dockerCredentialsPath")  # fmt: skip
    if isinstance(exc, RepositoryUnknownError):
        return "check images.source (registry and repository)"
    if isinstance(exc, RegistryTlsError):
        return "set images.source.caBundle to the registry's CA (or insecure: true for http)"
    if isinstance(exc, RegistryConnectionError):
        return "check images.source.registry and the network (insecure: true for plain http)"
    return "the registry answered an error: try again later, or check images.source"


async def check_registry(config: Config) -> Check:
    """List the repository's tags with the configured credentials."""
    if isinstance(config.images.source, GoogleSource):
        return await _check_google(config)
    repository = config.images.repository
    who = _credentials(config)
    async with aiohttp.ClientSession() as session:
        try:
            client = registry_client(config, session)
            tags = await asyncio.wait_for(client.list_tags(repository.repository), TIMEOUT)
        except RegistryError as exc:
            return Check("registry", False, f"{repository} ({who}): {exc}",
                         _registry_fix(exc, config))  # fmt: skip
        except TimeoutError:
            found = f"{repository}: no tag list within {TIMEOUT:.0f} s"
            return Check("registry", False, found, "check images.source.registry and the network")
    return Check("registry", True, f"{repository}: {len(tags)} tags listed ({who})")


async def _check_google(config: Config) -> Check:
    """List the Artifact Registry repository with Application Default Credentials."""
    repository = config.images.repository
    async with aiohttp.ClientSession() as session:
        try:
            source = image_source(config, session).tag_source()
            tags = await asyncio.wait_for(source.list_tags(), TIMEOUT)
        except SourceUnavailableError as exc:
            return Check("registry", False, f"{repository} (Artifact Registry): {exc}",
                         "check images.source (location, projectId, repository, endpoint) and "
                         "the Google credentials (GOOGLE_APPLICATION_CREDENTIALS, or the "
                         "workload identity)")  # fmt: skip
        except TimeoutError:
            found = f"{repository}: no listing within {TIMEOUT:.0f} s"
            return Check("registry", False, found, "check images.source.endpoint and the network")
    found = f"{repository}: {len(tags)} tags listed (Artifact Registry, Google credentials)"
    return Check("registry", True, found)


async def run_checks(
    config: Path | None, database: str | None, broker: str | None, prefix: str
) -> list[Check]:
    """Every check, in order: config, database, broker, workers, registry."""
    loaded, parsed = check_config(config)
    checks = [loaded, await check_database(database), *await check_broker(broker, prefix)]
    if parsed is None:
        checks.append(Check("registry", False, "not checked: no configuration",
                            "fix the configuration first"))  # fmt: skip
    else:
        checks.append(await check_registry(parsed))
    return checks
