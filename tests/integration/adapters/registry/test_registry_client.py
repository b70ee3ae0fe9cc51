"""The registry client against a real, anonymous CNCF registry: tags, digests, costs."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.support.push import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from tests.support.registry import RunningRegistry, client_for
from worker.adapters.registry import (
    ManifestUnknownError,
    RegistryClient,
    RegistryError,
    RegistryInvalidUrlError,
    RepositoryUnknownError,
)

REPO = "lsstsqre/sciplat-lab"


async def test_lists_tags_and_resolves_aliases_to_one_digest(
    registry: RunningRegistry, registry_session: aiohttp.ClientSession
) -> None:
    pusher = registry.pusher(registry_session)
    weekly = await pusher.push_image(REPO, ["w_2077_43", "recommended", "latest_weekly"])
    daily = await pusher.push_image(REPO, ["d_2077_10_23"], variant="daily")
    client = client_for(registry, registry_session)

    tags = await client.list_tags(REPO)

    assert sorted(tags) == ["d_2077_10_23", "latest_weekly", "recommended", "w_2077_43"]
    assert await client.get_digest(REPO, "recommended") == weekly
    assert await client.get_digest(REPO, "w_2077_43") == weekly
    assert await client.get_digest(REPO, "d_2077_10_23") == daily
    assert weekly != daily


async def test_digests_of_docker_oci_and_index_manifests(
    registry: RunningRegistry, registry_session: aiohttp.ClientSession
) -> None:
    pusher = registry.pusher(registry_session)
    docker = await pusher.push_image(REPO, ["r21_0_1"], kind="docker", variant="docker")
    oci = await pusher.push_image(REPO, ["r21_0_2"], kind="oci", variant="oci")
    index = await pusher.push_index(REPO, ["w_2077_44"], ["amd64", "arm64"])
    client = client_for(registry, registry_session)

    docker_info = await client.get_manifest_info(REPO, "r21_0_1")
    oci_info = await client.get_manifest_info(REPO, "r21_0_2")
    index_info = await client.get_manifest_info(REPO, "w_2077_44")

    assert (docker_info.digest, docker_info.media_type) == (docker, DOCKER_MANIFEST)
    assert (oci_info.digest, oci_info.media_type) == (oci, OCI_MANIFEST)
    assert (index_info.digest, index_info.media_type) == (index, OCI_INDEX)
    snapshot = client.stats.snapshot()
    assert snapshot.count("HEAD", 200) == 3
    assert snapshot.count("GET") == 0, "HEAD is enough when the digest header is present"


async def test_a_moved_tag_resolves_to_its_new_digest(
    registry: RunningRegistry, registry_session: aiohttp.ClientSession
) -> None:
    pusher = registry.pusher(registry_session)
    first = await pusher.push_image(REPO, ["recommended"], variant="one")
    second = await pusher.push_image(REPO, ["w_2077_45"], variant="two")
    client = client_for(registry, registry_session)
    assert await client.get_digest(REPO, "recommended") == first

    await pusher.tag(REPO, "recommended", second)

    assert await client.get_digest(REPO, "recommended") == second


async def test_deleted_manifest_is_unknown_and_unknown_repository_is_reported(
    registry: RunningRegistry, registry_session: aiohttp.ClientSession
) -> None:
    pusher = registry.pusher(registry_session)
    digest = await pusher.push_image(REPO, ["w_2077_46", "recommended"], variant="gone")
    await pusher.push_image(REPO, ["w_2077_47"], variant="stays")
    client = client_for(registry, registry_session)

    await pusher.delete(REPO, digest)

    with pytest.raises(ManifestUnknownError) as caught:
        await client.get_digest(REPO, "recommended")
    assert caught.value.status == 404
    assert caught.value.method == "HEAD"
    assert caught.value.url == f"http://{registry.host}/v2/{REPO}/manifests/recommended"
    assert await client.list_tags(REPO) == ["w_2077_47"]
    with pytest.raises(RepositoryUnknownError):
        await client.list_tags("no/such-repository")
    assert client.stats.retries == 0, "a 404 is an answer, not a transient failure"


async def test_invalid_names_are_refused_before_any_request(
    registry: RunningRegistry, registry_session: aiohttp.ClientSession
) -> None:
    client = client_for(registry, registry_session)

    for repository in ["../etc", "UPPER/case", "a//b", "repo?x=1"]:
        with pytest.raises(RegistryInvalidUrlError):
            await client.list_tags(repository)
    with pytest.raises(RegistryInvalidUrlError):
        await client.get_digest(REPO, "bad/tag")
    with pytest.raises(RegistryInvalidUrlError):
        RegistryClient(registry_session, "https://example.org/path")
    assert client.stats.snapshot().total_requests == 0


@pytest.mark.slow
async def test_two_thousand_tags_at_bounded_concurrency(
    registry: RunningRegistry, registry_session: aiohttp.ClientSession
) -> None:
    tags = [f"w_2077_{n:04d}" for n in range(2000)]
    pushed = await registry.pusher(registry_session).push_tags(REPO, tags)
    client = client_for(registry, registry_session)

    listed = await client.list_tags(REPO)
    digests = await asyncio.gather(*(client.get_digest(REPO, tag) for tag in listed))

    assert sorted(listed) == tags
    assert dict(zip(listed, digests, strict=True)) == pushed
    assert len(set(digests)) == 2000
    snapshot = client.stats.snapshot()
    assert snapshot.count("HEAD", 200) == 2000
    assert snapshot.count("GET", 200) == 1
    assert snapshot.bytes_received > 2000 * len("w_2077_0000")


async def test_with_stats_gives_each_refresh_its_own_counters(
    registry: RunningRegistry, registry_session: aiohttp.ClientSession
) -> None:
    await registry.pusher(registry_session).push_image(REPO, ["w_2077_48"])
    client = client_for(registry, registry_session)
    refresh = client.with_stats(client.new_stats())

    await refresh.get_digest(REPO, "w_2077_48")
    await refresh.list_tags(REPO)

    assert refresh.stats.snapshot().total_requests == 2
    assert client.stats.snapshot().total_requests == 0
    assert refresh.registry == client.registry == registry.host


async def test_connection_refused_is_a_registry_error(
    registry: RunningRegistry, registry_session: aiohttp.ClientSession
) -> None:
    registry.process.terminate()
    await registry.process.wait()
    client = client_for(registry, registry_session)

    with pytest.raises(RegistryError) as caught:
        await client.list_tags(REPO)

    assert caught.value.method == "GET"
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)
    snapshot = client.stats.snapshot()
    assert snapshot.connection_errors == 5, "one try and four retries (max_attempts=5)"
    assert snapshot.retries == 4
