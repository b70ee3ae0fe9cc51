"""Resolving with a Google source: listed tags from the ledger, a tag pushed since the last
listing with a HEAD on the Docker API of ``*-docker.pkg.dev`` (here a local registry that
takes only ``oauth2accesstoken`` and the token the stand-in OAuth endpoint issued)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.support import conformance as c
from tests.support.cli import run_cli
from tests.support.google_fixtures import GoogleStandIns, google
from tests.support.registry import HtpasswdAuth, RunningRegistry, run_registry
from tests.support.spawner import refresh, serving
from worker.adapters.registry import GOOGLE_DOCKER_USER
from worker.config import Config
from worker.converter import parse_config

__all__ = ["google"]

TOKEN = "ya29.standin-resolve-token"
REFERENCE = "us-central1-docker.pkg.dev/rubin-shared-services-71ec/sciplat/sciplat-lab"
PATH = "rubin-shared-services-71ec/sciplat/sciplat-lab"


@pytest.fixture
async def docker(google: GoogleStandIns, tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    """The Docker API of the repository: it knows only ``oauth2accesstoken`` with the one
    token the stand-in OAuth endpoint issues."""
    google.oauth.token_factory = lambda: TOKEN
    auth = HtpasswdAuth(users={GOOGLE_DOCKER_USER: TOKEN})
    async with run_registry(tmp_path / "docker", htpasswd=auth) as running:
        yield running


def config_data(google: GoogleStandIns, docker: RunningRegistry) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((c.DATA / "controller" / "config-gar.yaml").read_text())
    data["images"]["source"] |= {
        "endpoint": str(google.registry.endpoint),
        "dockerEndpoint": f"http://{docker.host}",
    }
    return data


async def seeded(google: GoogleStandIns, docker: RunningRegistry, url: str) -> tuple[Config, str]:
    """The ``gar`` listing refreshed into the ledger; ``w_2077_45`` pushed after it, to the
    Docker API only. Returns the config and the new tag's digest."""
    config = parse_config(config_data(google, docker))
    google.load("gar", config)
    assert (await refresh(config, url)).succeeded
    async with aiohttp.ClientSession() as session:
        pushed = await docker.pusher(session).push_image(PATH, ["w_2077_45"])
    return config, pushed


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def test_a_tag_pushed_since_the_listing_is_headed_with_the_token(
    google: GoogleStandIns, docker: RunningRegistry, database_url: str
) -> None:
    config, pushed = await seeded(google, docker, database_url)
    listed = c.read_json("registry/gar.json")
    weekly = next(e for e in listed if "recommended" in e["tags"])["uri"].split("@")[1]

    async with serving(config, database_url) as base:
        known = await get(f"{base}/spawner/v1/resolve?tag=recommended")
        new = await get(f"{base}/spawner/v1/resolve?tag=w_2077_45")
        by_reference = await get(f"{base}/spawner/v1/resolve?reference={REFERENCE}:w_2077_45")
        gone = await get(f"{base}/spawner/v1/resolve?tag=w_2099_01")

    assert known[0] == 200
    assert known[1]["digest"] == weekly
    assert new[0] == 200, new
    assert new[1]["digest"] == pushed
    assert new[1]["reference_with_digest"] == f"{REFERENCE}:w_2077_45@{pushed}"
    assert new[1]["name"] == "Weekly 2077_45"
    assert by_reference == new
    assert gone[0] == 400
    assert gone[1]["detail"][0]["type"] == "unknown_image"
    assert {g.access_token for g in google.oauth.grants} == {TOKEN}


async def test_the_resolve_command_heads_with_the_token(
    google: GoogleStandIns, docker: RunningRegistry, database_url: str, tmp_path: Path
) -> None:
    _, pushed = await seeded(google, docker, database_url)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_data(google, docker)))
    env = {"IMAGELEDGER_CONFIG": str(path), "IMAGELEDGER_DATABASE_URL": database_url}

    code, out, err = await run_cli("resolve", "--tag", "w_2077_45", "--json", env=env)

    assert code == 0, err
    assert json.loads(out)["digest"] == pushed
    assert TOKEN not in out + err


async def test_a_refused_token_fails_the_head_as_a_registry_error(
    google: GoogleStandIns, tmp_path: Path, database_url: str
) -> None:
    """The Docker API refusing the token (a registry that knows another password) is a
    registry error (502), not an unknown image."""
    auth = HtpasswdAuth(users={GOOGLE_DOCKER_USER: "some-other-token"})
    async with run_registry(tmp_path / "refusing", htpasswd=auth) as refusing:
        config = parse_config(config_data(google, refusing))
        google.load("gar", config)
        assert (await refresh(config, database_url)).succeeded
        async with serving(config, database_url) as base:
            status, body = await get(f"{base}/spawner/v1/resolve?tag=w_2077_45")
    assert status == 502
    assert body["detail"][0]["type"] == "registry_error"
    assert "credentials" in body["detail"][0]["msg"]
