"""The open HTTP port cannot drive registry traffic (issue 12, fault 4): anonymous resolves
are answered from the ledger, a tag it never resolved costs one HEAD however many ask, the
HEADs have a budget per minute (then 429 with Retry-After), and a bearer token can close the
spawner API while the probes and the metrics stay open."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import aiohttp

from tests.integration.services.test_resolve import REPO, seed
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RunningRegistry
from tests.support.spawner import serving

TOKEN = "imageledger-test-token-1234"


async def test_a_thousand_anonymous_resolves_make_one_registry_head(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    database_url: str,
) -> None:
    host = fault_proxy.host
    config, digests = await seed(registry, registry_session, host, database_url)
    fault_proxy.delay(f"/v2/{REPO}/manifests/exp_random", 0.2, method="HEAD")  # overlap them
    before = fault_proxy.count("HEAD")
    queries = [
        "tag=w_2077_43",
        f"reference={host}/{REPO}:recommended",
        "class=latest-weekly",
        "tag=exp_random",  # listed, never resolved: the one that needs the registry
        f"reference={host}/{REPO}:exp_random",
        "tag=no_such_tag",
    ]
    async with serving(config, database_url) as base, aiohttp.ClientSession() as http:

        async def resolve(query: str) -> tuple[int, str | None]:
            async with http.get(f"{base}/spawner/v1/resolve?{query}") as response:
                body = await response.json()
                return response.status, body.get("digest")

        answers = await asyncio.gather(
            *(resolve(q) for q in itertools.islice(itertools.cycle(queries), 1000))
        )
    assert Counter(answers) == Counter(
        {
            (200, digests["weekly"]): 3 * 167,
            (200, digests["exp"]): 2 * 167 - 1,
            (400, None): 166,
        }
    )
    assert fault_proxy.count("HEAD") - before == 1
    assert fault_proxy.count("HEAD", r"/manifests/exp_random$") >= 1
    assert fault_proxy.count("GET", r"/tags/list") == 1  # the seed's refresh, nothing since


async def test_past_the_budget_of_heads_a_resolve_is_429_with_retry_after(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    database_url: str,
) -> None:
    host = fault_proxy.host
    await registry.pusher(registry_session).push_image(REPO, ["exp_a", "exp_b"], variant="ab")
    config, digests = await seed(
        registry, registry_session, host, database_url, resolveHeadsPerMinute=1
    )
    before = fault_proxy.count("HEAD")
    async with serving(config, database_url) as base, aiohttp.ClientSession() as http:
        async with http.get(f"{base}/spawner/v1/resolve?tag=exp_random") as response:
            assert response.status == 200
            assert (await response.json())["digest"] == digests["exp"]
        async with http.get(f"{base}/spawner/v1/resolve?tag=exp_a") as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "60"
            assert await response.json() == {
                "detail": [
                    {
                        "loc": ["query", "tag"],
                        "msg": "too many fresh registry lookups (1 a minute); retry in 60 s",
                        "type": "rate_limited",
                    }
                ]
            }
        async with http.get(f"{base}/spawner/v1/resolve?tag=exp_random") as response:
            assert response.status == 200  # an answer already in hand costs no HEAD
        async with http.get(f"{base}/spawner/v1/resolve?tag=w_2077_43") as response:
            assert response.status == 200  # nor does one the ledger knows
    assert fault_proxy.count("HEAD") - before == 1


async def test_a_bearer_token_closes_the_spawner_api_but_not_the_probes_or_metrics(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    database_url: str,
) -> None:
    config, _ = await seed(registry, registry_session, registry.host, database_url)
    paths = ["/spawner/v1/images", "/spawner/v1/prepulls", "/spawner/v1/resolve?tag=w_2077_43"]
    async with serving(config, database_url, TOKEN) as base, aiohttp.ClientSession() as http:
        for path in [*paths, "/unknown"]:
            for header in (None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"):
                headers = {"Authorization": header} if header else {}
                async with http.get(f"{base}{path}", headers=headers) as response:
                    assert response.status == 401, (path, header)
                    assert response.headers["WWW-Authenticate"] == 'Bearer realm="imageledger"'
                    body = await response.json()
                    assert body["detail"][0]["type"] == "unauthorized"
        for path in paths:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with http.get(f"{base}{path}", headers=headers) as response:
                assert response.status == 200, path
        for path in ("/livez", "/metrics", "/readyz", "/healthz"):
            async with http.get(f"{base}{path}") as response:
                assert response.status != 401, path
