"""``imageledger check``: one line per check with what to do, exit 0 only when all pass."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from click.testing import CliRunner, Result

from tests.integration.consumer.test_worker import REPO, running_worker
from tests.support.database import url_for
from tests.support.google_fixtures import GoogleStandIns, google
from tests.support.registry import PASSWORD, USER, RunningRegistry
from worker.adapters.broker import BrokerSettings
from worker.adapters.ledger import revisions
from worker.cli import main
from worker.converter import load_config

__all__ = ["google"]


def write_config(path: Path, registry: str) -> Path:
    path.write_text(
        f"images:\n  source: {{type: docker, registry: '{registry}', repository: {REPO},"
        " insecure: true}\n"
    )
    return path


async def check(config: Path, database: str, settings: BrokerSettings, **env: str) -> Result:
    args = ["check", "--config", str(config), "--database-url", database,
            "--amqp-url", settings.url, "--prefix", settings.prefix]  # fmt: skip
    return await asyncio.to_thread(CliRunner().invoke, main, args, env=env)


def verdicts(result: Result) -> dict[str, str]:
    """Check name -> its line after the name."""
    lines = result.stdout.splitlines()
    return {line.split()[1]: line.split(None, 2)[2] for line in lines}


async def test_everything_in_place_passes(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    database_url: str,
    broker_settings: BrokerSettings,
    tmp_path: Path,
) -> None:
    pusher = registry.pusher(registry_session)
    await pusher.push_image(REPO, ["w_2077_43", "recommended"])
    config = write_config(tmp_path / "config.yaml", registry.host)
    async with running_worker(load_config(config), broker_settings, database_url):
        result = await check(config, database_url, broker_settings)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", "config"], ["ok", "database"], ["ok", "broker"], ["ok", "workers"],
        ["ok", "registry"],
    ]  # fmt: skip
    found = verdicts(result)
    assert found["database"].endswith(f"schema at the head revision ({revisions()[-1]})")
    assert f"consumers {broker_settings.prefix}.refresh 1" in found["workers"]
    assert found["registry"] == f"{registry.host}/{REPO}: 2 tags listed (anonymous: no credentials)"
    assert result.stderr == ""


async def test_each_failure_says_what_to_do(
    basic_registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    empty_database_url: str,
    broker_settings: BrokerSettings,
    tmp_path: Path,
) -> None:
    await basic_registry.pusher(registry_session).push_image(REPO, ["w_2077_43"])
    config = write_config(tmp_path / "config.yaml", basic_registry.host)
    result = await check(config, empty_database_url, broker_settings)
    assert result.exit_code == 1
    assert result.stderr == "imageledger: error: 3 check(s) failed: database, workers, registry\n"
    found = verdicts(result)
    assert found["database"].endswith("has no schema yet -> run imageledger migrate")
    prefix = broker_settings.prefix
    assert found["workers"].startswith(f"prefix {prefix}: missing exchange {prefix}, queue ")
    assert "-> start imageledger run with this prefix" in found["workers"]
    assert "IMAGELEDGER_BROKER_PREFIX" in found["workers"]
    assert found["registry"].startswith(f"{basic_registry.host}/{REPO} (anonymous: no credentials)")
    assert found["registry"].endswith(
        "-> give credentials that may pull "
        f"{basic_registry.host}/{REPO}: IMAGELEDGER_REGISTRY_USERNAME and "
        "IMAGELEDGER_REGISTRY_PASSWORD, or images.dockerCredentialsPath"
    )
    credentials = {"IMAGELEDGER_REGISTRY_USERNAME": USER, "IMAGELEDGER_REGISTRY_PASSWORD": PASSWORD}
    again = await check(config, empty_database_url, broker_settings, **credentials)
    assert verdicts(again)["registry"] == (
        f"{basic_registry.host}/{REPO}: 1 tags listed (credentials from "
        "IMAGELEDGER_REGISTRY_USERNAME)"
    )


async def test_a_missing_database_and_config(
    broker_settings: BrokerSettings, tmp_path: Path
) -> None:
    missing = url_for("il_never_created")
    bad = tmp_path / "config.yaml"
    bad.write_text("images:\n  source: {repository: lab}\n  num_weeklies: two\n")
    result = await check(bad, missing, broker_settings)
    assert result.exit_code == 1
    found = verdicts(result)
    assert found["config"].endswith(
        "expected an integer, got str @ $.images.numWeeklies -> fix the key named (camelCase or"
        " snake_case; a Phalanx values file is read from controller.config)"
    )
    assert found["database"] == (
        "postgresql+asyncpg://postgres@127.0.0.1:5432/il_never_created: the database does not "
        "exist -> create it: createdb -h 127.0.0.1 -p 5432 -U postgres il_never_created; then "
        "run imageledger migrate"
    )
    assert found["registry"] == "not checked: no configuration -> fix the configuration first"
    args = ["migrate", "--database-url", missing]
    migrate = await asyncio.to_thread(CliRunner().invoke, main, args)
    assert migrate.exit_code == 1
    assert migrate.stderr.strip().endswith(
        "; create it first: createdb -h 127.0.0.1 -p 5432 -U postgres il_never_created"
    )


async def test_a_google_source_is_checked_by_listing_it(
    google: GoogleStandIns, empty_database_url: str, broker_settings: BrokerSettings, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "images:\n  source: {type: google, location: us-central1, projectId:"
        " rubin-shared-services-71ec, repository: sciplat, image: sciplat-lab,"
        f" endpoint: '{google.registry.endpoint}'}}\n"
    )
    google.load("gar", load_config(config))
    where = "us-central1-docker.pkg.dev/rubin-shared-services-71ec/sciplat/sciplat-lab"

    listed = await check(config, empty_database_url, broker_settings)
    google.oauth.on_issue = None  # the API refuses every token from now on
    refused = await check(config, empty_database_url, broker_settings)

    assert verdicts(listed)["registry"] == (
        f"{where}: 7 tags listed (Artifact Registry, Google credentials)"
    )
    verdict = verdicts(refused)["registry"]
    assert verdict.startswith(f"{where} (Artifact Registry): access denied: UNAUTHENTICATED")
    assert verdict.endswith("GOOGLE_APPLICATION_CREDENTIALS, or the workload identity)")
