"""Resolve over HTTP, the CLI and SQL: the ledger's digests, HEADs only for tags it never
resolved (coalesced, cached, budgeted: issue 12, fault 4), the errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml

from tests.support.cli import run_cli
from tests.support.database import url_for
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RunningRegistry
from tests.support.spawner import refresh, serving
from worker.config import Config
from worker.converter import parse_config

REPO = "lsstsqre/sciplat-lab"


def make_config(registry: str, **http: Any) -> dict[str, Any]:
    """``resolveBudget: 0``: a refresh HEADs the prepull candidates and possible aliases
    only, so ``exp_random`` stays listed without a digest (a tag the ledger never resolved)."""
    source = {"type": "docker", "registry": registry, "repository": REPO, "insecure": True}
    return {"images": {"source": source, "resolveBudget": 0}, "http": http}


async def seed(
    registry: RunningRegistry,
    session: aiohttp.ClientSession,
    host: str,
    url: str,
    **http: Any,
) -> tuple[Config, dict[str, str]]:
    """Push a small repository, refresh it into the ledger; returns the config and digests."""
    pusher = registry.pusher(session)
    digests = {
        "weekly": await pusher.push_image(REPO, ["w_2077_43", "recommended"], variant="w43"),
        "older": await pusher.push_image(REPO, ["w_2077_42"], variant="w42"),
        "daily": await pusher.push_image(REPO, ["d_2077_10_23"], variant="d"),
        "exp": await pusher.push_image(REPO, ["exp_random"], variant="exp"),
    }
    config = parse_config(make_config(host, **http))
    assert (await refresh(config, url)).succeeded
    return config, digests


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


def detail(loc: str, msg: str, kind: str) -> dict[str, Any]:
    return {"detail": [{"loc": ["query", loc], "msg": msg, "type": kind}]}


async def test_a_tag_is_resolved_from_the_ledger(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    database_url: str,
) -> None:
    host = fault_proxy.host
    config, digests = await seed(registry, registry_session, host, database_url)
    heads = fault_proxy.count("HEAD")
    async with serving(config, database_url) as base:
        status, body = await get(f"{base}/spawner/v1/resolve?tag=w_2077_43")
        assert status == 200
        assert body == {
            "reference": f"{host}/{REPO}:w_2077_43",
            "tag": "w_2077_43",
            "name": "Weekly 2077_43",
            "digest": digests["weekly"],
            "aliases": ["recommended"],
            "prepulled": True,  # no nodes yet: vacuously prepulled (reference 4.6)
            "reference_with_digest": f"{host}/{REPO}:w_2077_43@{digests['weekly']}",
        }
        # The tag moves in the registry: the ledger answers until a refresh has seen it.
        moved = await registry.pusher(registry_session).push_image(
            REPO, ["w_2077_43"], variant="w43-rebuilt"
        )
        query = f"reference={host}/{REPO}:w_2077_43"
        status, body = await get(f"{base}/spawner/v1/resolve?{query}")
        assert (status, body["digest"]) == (200, digests["weekly"])
        # A class comes from the prepull set as the ledger knows it.
        status, body = await get(f"{base}/spawner/v1/resolve?class=recommended")
        assert status == 200
        assert (body["name"], body["digest"]) == ("Recommended (Weekly 2077_43)", digests["weekly"])
        assert fault_proxy.count("HEAD") == heads  # no registry request for any of them
        assert (await refresh(config, database_url)).succeeded
        status, body = await get(f"{base}/spawner/v1/resolve?{query}")
        assert (status, body["digest"], body["aliases"]) == (200, moved, [])


async def test_a_reference_with_a_digest_is_answered_from_the_ledger(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    database_url: str,
) -> None:
    host = fault_proxy.host
    config, digests = await seed(registry, registry_session, host, database_url)
    fault_proxy.respond(f"/v2/{REPO}/manifests/", 403, times=None, method="HEAD")
    weekly = digests["weekly"]
    async with serving(config, database_url) as base:
        # A prepull-set digest names its image whatever the tag (reference 4.7).
        status, body = await get(f"{base}/spawner/v1/resolve?reference={host}/{REPO}@{weekly}")
        assert status == 200
        assert (body["tag"], body["digest"]) == ("w_2077_43", weekly)
        # Outside the prepull set the reference's digest is taken as given.
        exp = f"{host}/{REPO}:exp_random@{digests['exp']}"
        status, body = await get(f"{base}/spawner/v1/resolve?reference={exp}")
        assert status == 200
        assert body["reference_with_digest"] == exp
        # A tag the ledger never resolved needs the registry: here it refuses.
        status, body = await get(f"{base}/spawner/v1/resolve?tag=exp_random")
    assert status == 502
    assert body["detail"][0]["type"] == "registry_error"
    assert "exp_random" in body["detail"][0]["msg"]


async def test_invalid_and_unknown_over_http(
    registry: RunningRegistry, registry_session: aiohttp.ClientSession, database_url: str
) -> None:
    config, _ = await seed(registry, registry_session, registry.host, database_url)
    host = registry.host
    no_tag = f"{host}/{REPO}"
    unknown_digest = f"{no_tag}@sha256:{'0' * 64}"
    cases = [
        (f"reference={no_tag}", 422, detail("reference", f'Docker reference "{no_tag}" has no tag',
                                            "invalid_docker_reference")),
        (f"reference={unknown_digest}", 422, detail(
            "reference", f'Docker reference "{unknown_digest}" has no tag',
            "invalid_docker_reference")),
        ("tag=unknown", 400, detail("tag", 'Docker tag "unknown" not found', "unknown_image")),
        (f"reference={no_tag}:unknown", 400, detail(
            "reference", f'Docker reference "{no_tag}:unknown" not found', "unknown_image")),
        (f"reference=other.example/{REPO}:w_2077_43", 400, detail(
            "reference", f'Docker reference "other.example/{REPO}:w_2077_43" not found',
            "unknown_image")),
        ("class=latest-release", 400, detail(
            "class", "No latest-release image found", "unknown_image")),
    ]  # fmt: skip
    async with serving(config, database_url) as base:
        for query, status, body in cases:
            assert await get(f"{base}/spawner/v1/resolve?{query}") == (status, body), query
        status, body = await get(f"{base}/spawner/v1/resolve?reference=no-slash")
        assert status == 422
        assert body["detail"][0]["type"] == "invalid_docker_reference"
        assert body["detail"][0]["msg"].startswith('Docker reference "no-slash" has no registry')
        status, body = await get(f"{base}/spawner/v1/resolve?class=oldest")
        assert (status, body["detail"][0]["type"]) == (422, "enum")
        status, body = await get(f"{base}/spawner/v1/resolve")
        assert (status, body["detail"][0]["type"]) == (422, "invalid_query")


async def test_registry_unreachable_is_502(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    database_url: str,
) -> None:
    config, _ = await seed(registry, registry_session, fault_proxy.host, database_url)
    await fault_proxy.stop()
    async with serving(config, database_url) as base:
        status, body = await get(f"{base}/spawner/v1/resolve?tag=exp_random")
    assert status == 502
    assert body["detail"][0]["type"] == "registry_error"
    assert "connection failed" in body["detail"][0]["msg"]


async def cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    return await run_cli("resolve", *args, env=env)


def one_error_line(err: str) -> str:
    """The one error line; other stderr lines may only be structured logs (the retries)."""
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if not line.startswith('{"timestamp": ')]
    assert len(lines) == 1, err
    assert lines[0].startswith("imageledger: error: ")
    return lines[0].removeprefix("imageledger: error: ")


async def test_resolve_command(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    database_url: str,
    tmp_path: Path,
) -> None:
    host = fault_proxy.host
    _, digests = await seed(registry, registry_session, host, database_url)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(make_config(host)))
    env = {"IMAGELEDGER_CONFIG": str(path), "IMAGELEDGER_DATABASE_URL": database_url}

    code, out, _ = await cli(f"{host}/{REPO}:recommended", env=env)
    assert code == 0
    assert out.splitlines()[:2] == [
        "Recommended (Weekly 2077_43)",
        f"  image:     {host}/{REPO}:recommended@{digests['weekly']}",
    ]
    code, out, _ = await cli("--tag", "d_2077_10_23", "--json", env=env)
    assert code == 0
    assert json.loads(out)["digest"] == digests["daily"]

    code, _, err = await cli(f"{host}/{REPO}", env=env)
    assert (code, one_error_line(err)) == (2, f'Docker reference "{host}/{REPO}" has no tag')
    code, _, err = await cli("--tag", "unknown", env=env)
    assert (code, one_error_line(err)) == (3, 'Docker tag "unknown" not found')
    code, _, err = await cli(f"{host}/{REPO}:unknown", env=env)
    assert (code, one_error_line(err)) == (3, f'Docker reference "{host}/{REPO}:unknown" not found')
    code, _, err = await cli("--tag", "w_2077_43", "x/y:z", env=env)
    assert code == 2
    assert "exactly one of" in one_error_line(err)

    code, out, _ = await cli("--tag", "exp_random", "--json", env=env)  # a HEAD
    assert (code, json.loads(out)["digest"]) == (0, digests["exp"])
    await fault_proxy.stop()
    code, _, err = await cli("--tag", "exp_random", env=env)
    assert code == 4
    assert "cannot fetch the digest" in one_error_line(err)


async def test_resolve_command_without_database_or_config(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(make_config(registry.host)))
    missing = {"IMAGELEDGER_CONFIG": str(path), "IMAGELEDGER_DATABASE_URL": url_for("il_gone")}
    code, _, err = await cli("--tag", "w_2077_43", env=missing)
    assert code == 1
    assert 'database "il_gone" does not exist' in one_error_line(err)

    bad = tmp_path / "bad.yaml"
    bad.write_text("images:\n  source: {type: docker}\n  numWeekly: 2\n")
    code, _, err = await cli("--tag", "w_2077_43", env={"IMAGELEDGER_CONFIG": str(bad)})
    assert code == 2
    assert str(bad) in one_error_line(err)


async def test_image_for_tag_in_sql(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    database_url: str,
    reader_login: str,
) -> None:
    _, digests = await seed(registry, registry_session, registry.host, database_url)
    db = await asyncpg.connect(reader_login)
    try:
        rows = await db.fetch("SELECT * FROM dashboard.image_for_tag('recommended')")
        none = await db.fetch("SELECT * FROM dashboard.image_for_tag('unknown')")
    finally:
        await db.close()
    assert none == []
    assert len(rows) == 1
    row = dict(rows[0])
    assert row == {
        "registry": registry.host,
        "repository": REPO,
        "tag": "recommended",
        "digest": digests["weekly"],
        "display_name": "Recommended (Weekly 2077_43)",
        "image_type": "Alias",
        "alias_target": "w_2077_43",
        "aliases": ["w_2077_43"],
        "reference": f"{registry.host}/{REPO}:recommended",
        "reference_with_digest": f"{registry.host}/{REPO}:recommended@{digests['weekly']}",
        "prepulled": True,
        "flagged": False,
    }


@pytest.mark.parametrize("query", ["tag=w_2077_43", "class=recommended"])
async def test_an_empty_ledger_knows_no_image(
    registry: RunningRegistry, database_url: str, query: str
) -> None:
    config = parse_config(make_config(registry.host))
    async with serving(config, database_url) as base:
        status, body = await get(f"{base}/spawner/v1/resolve?{query}")
    assert status == 400
    assert body["detail"][0]["type"] == "unknown_image"
