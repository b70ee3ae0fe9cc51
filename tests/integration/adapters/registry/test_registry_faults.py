"""Registry faults through a fault-injecting proxy in front of the real registry."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from attrs import evolve

from tests.support.faultproxy import FaultProxy
from tests.support.registry import FAST_LIMITS, RunningRegistry, client_for
from worker.adapters.registry import (
    RegistryClient,
    RegistryError,
    RegistryInvalidUrlError,
    RegistryLimits,
    RegistryRateLimitedError,
    RegistryRetryBudgetExhaustedError,
    RegistryServerError,
    RequestStats,
    RetryBudget,
)

REPO = "lsstsqre/sciplat-lab"
TAG = "w_2077_43"


async def _setup(
    registry: RunningRegistry,
    proxy: FaultProxy,
    session: aiohttp.ClientSession,
    limits: RegistryLimits = FAST_LIMITS,
) -> tuple[RegistryClient, str]:
    """Push one image and return a client going through the proxy, and the image's digest."""
    digest = await registry.pusher(session).push_image(REPO, [TAG, "recommended"])
    client = client_for(registry, session, host=proxy.host, limits=limits)
    return client, digest


async def test_429_with_retry_after_is_honoured_and_rate_limits_are_recorded(
    registry: RunningRegistry, fault_proxy: FaultProxy, registry_session: aiohttp.ClientSession
) -> None:
    client, digest = await _setup(registry, fault_proxy, registry_session)
    headers = {"Retry-After": "1", "RateLimit-Limit": "100;w=21600", "RateLimit-Remaining": "0"}
    fault_proxy.respond("/manifests/", 429, headers=headers)

    start = time.monotonic()
    assert await client.get_digest(REPO, TAG) == digest
    elapsed = time.monotonic() - start

    assert elapsed >= 0.95
    snapshot = client.stats.snapshot()
    assert (snapshot.count("HEAD", 429), snapshot.count("HEAD", 200), snapshot.retries) == (1, 1, 1)
    assert ("ratelimit-remaining", "0") in snapshot.rate_limit_headers
    assert ("ratelimit-limit", "100;w=21600") in snapshot.rate_limit_headers


async def test_long_retry_after_is_capped_and_persistent_429_is_reported(
    registry: RunningRegistry, fault_proxy: FaultProxy, registry_session: aiohttp.ClientSession
) -> None:
    limits = evolve(FAST_LIMITS, retry_after_max=0.05, max_attempts=3)
    client, _ = await _setup(registry, fault_proxy, registry_session, limits)
    fault_proxy.respond("/manifests/", 429, headers={"Retry-After": "3600"}, times=None)

    start = time.monotonic()
    with pytest.raises(RegistryRateLimitedError) as caught:
        await client.get_digest(REPO, TAG)

    assert time.monotonic() - start < 1.0
    assert caught.value.retry_after == 3600
    assert caught.value.status == 429
    assert client.stats.snapshot().count("HEAD", 429) == 3


async def test_503_is_retried(
    registry: RunningRegistry, fault_proxy: FaultProxy, registry_session: aiohttp.ClientSession
) -> None:
    client, _ = await _setup(registry, fault_proxy, registry_session)
    fault_proxy.respond("/tags/list", 503, times=2)

    assert sorted(await client.list_tags(REPO)) == ["recommended", TAG]

    snapshot = client.stats.snapshot()
    assert (snapshot.count("GET", 503), snapshot.retries) == (2, 2)


async def test_slow_answer_times_out_and_is_retried(
    registry: RunningRegistry, fault_proxy: FaultProxy, registry_session: aiohttp.ClientSession
) -> None:
    limits = evolve(FAST_LIMITS, request_timeout=0.3)
    client, digest = await _setup(registry, fault_proxy, registry_session, limits)
    fault_proxy.delay("/manifests/", 1.0)

    assert await client.get_digest(REPO, TAG) == digest

    snapshot = client.stats.snapshot()
    assert (snapshot.timeouts, snapshot.retries, snapshot.count("HEAD", 200)) == (1, 1, 1)


async def test_dropped_connections_are_retried(
    registry: RunningRegistry, fault_proxy: FaultProxy, registry_session: aiohttp.ClientSession
) -> None:
    client, digest = await _setup(registry, fault_proxy, registry_session)
    fault_proxy.drop("/manifests/", times=2)

    assert await client.get_digest(REPO, TAG) == digest

    assert fault_proxy.count("HEAD", fault="drop") == 2
    snapshot = client.stats.snapshot()
    # aiohttp itself retries an idempotent request once when a pooled connection drops
    assert 1 <= snapshot.connection_errors <= 2
    assert snapshot.retries == snapshot.connection_errors


async def test_ghcr_style_relative_link_pagination(
    registry: RunningRegistry, fault_proxy: FaultProxy, registry_session: aiohttp.ClientSession
) -> None:
    tags = [f"d_2077_10_{n:02d}" for n in range(25)]
    await registry.pusher(registry_session).push_tags(REPO, tags, distinct=False)
    client = client_for(registry, registry_session, host=fault_proxy.host)
    fault_proxy.paginate(10)

    assert await client.list_tags(REPO) == tags

    assert fault_proxy.count("GET", "/tags/list") == 3
    fault_proxy.paginate(7, "absolute")
    assert await client.list_tags(REPO) == tags


async def test_link_loop_is_refused(
    registry: RunningRegistry, fault_proxy: FaultProxy, registry_session: aiohttp.ClientSession
) -> None:
    await registry.pusher(registry_session).push_tags(REPO, ["a", "b", "c"], distinct=False)
    client = client_for(registry, registry_session, host=fault_proxy.host)
    fault_proxy.paginate(2, "loop")

    with pytest.raises(RegistryInvalidUrlError, match="already read"):
        await client.list_tags(REPO)

    assert fault_proxy.count("GET", "/tags/list") == 2


async def test_link_to_another_host_is_refused(
    registry: RunningRegistry, fault_proxy: FaultProxy, registry_session: aiohttp.ClientSession
) -> None:
    await registry.pusher(registry_session).push_tags(REPO, ["a", "b", "c"], distinct=False)
    client = client_for(registry, registry_session, host=fault_proxy.host)
    fault_proxy.paginate(2, "other-host")

    with pytest.raises(RegistryInvalidUrlError, match="outside the registry") as caught:
        await client.list_tags(REPO)

    assert "other-registry.invalid" in str(caught.value.url)


async def test_missing_digest_header_falls_back_to_hashing_the_manifest(
    registry: RunningRegistry, fault_proxy: FaultProxy, registry_session: aiohttp.ClientSession
) -> None:
    client, digest = await _setup(registry, fault_proxy, registry_session)
    index = await registry.pusher(registry_session).push_index(REPO, ["multi"], ["amd64", "arm64"])
    fault_proxy.strip_header("/manifests/", "Docker-Content-Digest")

    assert await client.get_digest(REPO, TAG) == digest
    assert await client.get_digest(REPO, "multi") == index

    snapshot = client.stats.snapshot()
    assert (snapshot.count("HEAD", 200), snapshot.count("GET", 200)) == (2, 2)


async def test_spent_retry_budget_is_a_clear_registry_error(
    registry: RunningRegistry, fault_proxy: FaultProxy, registry_session: aiohttp.ClientSession
) -> None:
    client, _ = await _setup(registry, fault_proxy, registry_session)
    refresh = client.with_stats(RequestStats(retry_budget=RetryBudget(limit=3)))
    fault_proxy.respond(f"/manifests/{TAG}$", 503, times=None)

    with pytest.raises(RegistryRetryBudgetExhaustedError) as first:
        await refresh.get_digest(REPO, TAG)
    with pytest.raises(RegistryRetryBudgetExhaustedError):
        await refresh.get_digest(REPO, TAG)

    assert isinstance(first.value, RegistryError)
    assert "retry budget of 3 retries is spent" in str(first.value)
    assert first.value.status == 503
    assert isinstance(first.value.__cause__, RegistryServerError)
    snapshot = refresh.stats.snapshot()
    assert (snapshot.retries, snapshot.retry_budget_used, snapshot.count("HEAD", 503)) == (3, 3, 5)


async def test_one_failing_tag_does_not_poison_the_others(
    registry: RunningRegistry, fault_proxy: FaultProxy, registry_session: aiohttp.ClientSession
) -> None:
    client, digest = await _setup(registry, fault_proxy, registry_session)
    fault_proxy.respond(f"/manifests/{TAG}$", 503, times=None)

    results = await asyncio.gather(
        client.get_digest(REPO, TAG), client.get_digest(REPO, "recommended"), return_exceptions=True
    )

    assert isinstance(results[0], RegistryServerError)
    assert results[0].status == 503
    assert results[1] == digest
    assert client.stats.snapshot().count("HEAD", 503) == FAST_LIMITS.max_attempts
