"""Registry auth against the real registry: htpasswd Basic, bearer tokens, and TLS."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.registry import FAST_LIMITS, PASSWORD, USER, RunningRegistry, client_for
from tests.support.tokenserver import TokenServer
from worker.adapters.registry import (
    DockerCredentialStore,
    RegistryAuthError,
    RegistryClient,
    RegistryCredentials,
    RegistryTlsError,
)

REPO = "lsstsqre/sciplat-lab"
GOOD = RegistryCredentials(username=USER, password=PASSWORD)


@pytest.fixture
async def token_proxy(token_registry: RunningRegistry) -> AsyncIterator[FaultProxy]:
    """A fault proxy in front of the token-auth registry."""
    proxy = FaultProxy(upstream=token_registry.url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


async def test_basic_auth_with_credentials_from_a_docker_config_file(
    basic_registry: RunningRegistry, registry_session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    digest = await basic_registry.pusher(registry_session).push_image(REPO, ["w_2077_43"])
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config = tmp_path / ".dockerconfigjson"
    config.write_text(json.dumps({"auths": {basic_registry.host: {"auth": auth}}}))
    credentials = DockerCredentialStore.from_file(config).lookup(basic_registry.host)
    client = client_for(basic_registry, registry_session, credentials=credentials)

    assert await client.list_tags(REPO) == ["w_2077_43"]
    assert await client.get_digest(REPO, "w_2077_43") == digest
    assert await client.get_digest(REPO, "w_2077_43") == digest

    snapshot = client.stats.snapshot()
    assert snapshot.count(status=401) == 1, "Basic is sent up front once the registry asked"
    assert snapshot.count(status=200) == 3


async def test_basic_auth_without_or_with_wrong_credentials_fails_clearly(
    basic_registry: RunningRegistry, registry_session: aiohttp.ClientSession
) -> None:
    anonymous = client_for(basic_registry, registry_session)
    wrong = client_for(
        basic_registry,
        registry_session,
        credentials=RegistryCredentials(username=USER, password="not-" + PASSWORD),
    )

    with pytest.raises(RegistryAuthError, match="none are configured") as missing:
        await anonymous.list_tags(REPO)
    with pytest.raises(RegistryAuthError, match="rejected the configured credentials") as bad:
        await wrong.list_tags(REPO)

    assert missing.value.status == bad.value.status == 401
    assert wrong.stats.retries == 0


async def test_anonymous_token_is_fetched_cached_and_reused_across_repositories(
    token_registry: RunningRegistry,
    token_server: TokenServer,
    registry_session: aiohttp.ClientSession,
) -> None:
    pusher = token_registry.pusher(registry_session)
    digest = await pusher.push_image(REPO, ["w_2077_43", "recommended"])
    await pusher.push_image("other/repo", ["r21_0_1"])
    client = client_for(token_registry, registry_session)

    assert sorted(await client.list_tags(REPO)) == ["recommended", "w_2077_43"]
    assert await client.get_digest(REPO, "recommended") == digest
    assert await client.get_digest(REPO, "w_2077_43") == digest
    assert await client.list_tags("other/repo") == ["r21_0_1"]

    queries = [dict(request.query) for request in token_server.requests]
    assert queries == [
        {"service": token_server.service, "scope": f"repository:{REPO}:pull"},
        {"service": token_server.service, "scope": "repository:other/repo:pull"},
    ]
    assert not any(request.sent_credentials for request in token_server.requests)
    snapshot = client.stats.snapshot()
    assert snapshot.count(status=401) == 1, "the second repository's token is fetched up front"
    assert snapshot.token_requests == 2


async def test_token_request_carries_credentials_to_a_loopback_realm(
    token_registry: RunningRegistry,
    token_server: TokenServer,
    registry_session: aiohttp.ClientSession,
) -> None:
    token_server.anonymous_pull = False
    await token_registry.pusher(registry_session).push_image(REPO, ["w_2077_43"])
    anonymous = client_for(token_registry, registry_session)
    authenticated = client_for(token_registry, registry_session, credentials=GOOD)

    with pytest.raises(RegistryAuthError, match="token service refused"):
        await anonymous.list_tags(REPO)
    assert await authenticated.list_tags(REPO) == ["w_2077_43"]

    assert [request.user for request in token_server.requests] == [None, USER]


async def test_token_expiring_mid_run_is_renewed_before_use(
    token_registry: RunningRegistry,
    token_server: TokenServer,
    registry_session: aiohttp.ClientSession,
) -> None:
    token_server.lifetime = 1
    digest = await token_registry.pusher(registry_session).push_image(REPO, ["w_2077_43"])
    client = client_for(token_registry, registry_session)

    for _ in range(3):
        assert await client.get_digest(REPO, "w_2077_43") == digest
        await asyncio.sleep(0.6)

    snapshot = client.stats.snapshot()
    assert snapshot.token_requests >= 2
    assert snapshot.count(status=401) == 1, "renewal happens on expiry, without a 401"


async def test_a_401_on_a_cached_token_renews_it_once(
    token_registry: RunningRegistry,
    token_server: TokenServer,
    token_proxy: FaultProxy,
    registry_session: aiohttp.ClientSession,
) -> None:
    digest = await token_registry.pusher(registry_session).push_image(REPO, ["w_2077_43"])
    client = client_for(token_registry, registry_session, host=token_proxy.host)
    assert await client.get_digest(REPO, "w_2077_43") == digest
    challenge = (
        f'Bearer realm="{token_server.realm}",service="{token_server.service}",'
        f'scope="repository:{REPO}:pull"'
    )

    token_proxy.respond("/manifests/", 401, headers={"WWW-Authenticate": challenge})
    assert await client.get_digest(REPO, "w_2077_43") == digest
    assert client.stats.token_requests == 2

    token_proxy.respond("/manifests/", 401, headers={"WWW-Authenticate": challenge}, times=2)
    with pytest.raises(RegistryAuthError, match="rejected a freshly issued token"):
        await client.get_digest(REPO, "w_2077_43")
    assert client.stats.token_requests == 3


async def test_a_token_the_registry_rejects_is_an_auth_error(
    token_registry: RunningRegistry,
    token_server: TokenServer,
    registry_session: aiohttp.ClientSession,
) -> None:
    await token_registry.pusher(registry_session).push_image(REPO, ["w_2077_43"])
    token_server.expired_to_issue = 1
    client = client_for(token_registry, registry_session)

    with pytest.raises(RegistryAuthError, match="rejected a freshly issued token") as caught:
        await client.list_tags(REPO)

    assert caught.value.status == 401
    assert client.stats.token_requests == 1


async def test_tls_with_a_test_ca_and_without_it(
    tls_registry: RunningRegistry, registry_session: aiohttp.ClientSession
) -> None:
    digest = await tls_registry.pusher(registry_session).push_image(REPO, ["w_2077_43"])
    trusted = client_for(tls_registry, registry_session)
    untrusted = RegistryClient(registry_session, tls_registry.host, limits=FAST_LIMITS)

    assert await trusted.get_digest(REPO, "w_2077_43") == digest
    with pytest.raises(RegistryTlsError) as caught:
        await untrusted.get_digest(REPO, "w_2077_43")

    assert caught.value.url == f"https://{tls_registry.host}/v2/{REPO}/manifests/w_2077_43"
    assert untrusted.stats.retries == 0, "a certificate problem is not transient"
