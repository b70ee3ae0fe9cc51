"""The compose stack's registry seeder (its cluster, the stand-in API server, is tested with
the bridge: tests/integration/kube/test_standin_entry.py and deploy/test_compose_stack.py)."""

from __future__ import annotations

from datetime import date

import aiohttp

from livedemo.repository import REPOSITORY, sample_repository
from livedemo.seed import seed
from tests.support.registry import RunningRegistry

TODAY = date(2077, 11, 10)
DIGEST = "sha256:" + "cd" * 32


async def test_the_seeder_pushes_the_sample_repository(registry: RunningRegistry) -> None:
    digests = await seed(registry.url, short=True, today=TODAY, wait=10)
    sample = sample_repository(TODAY, short=True)
    async with (
        aiohttp.ClientSession() as session,
        session.get(registry.url / "v2" / REPOSITORY / "tags/list") as response,
    ):
        listed = (await response.json())["tags"]
    expected = {*sample.images, *(alias for alias, _ in sample.aliases)}
    assert set(listed) == expected
    assert set(digests) == expected
    assert digests["recommended"] == digests[dict(sample.aliases)["recommended"]]
    assert len({digests[tag] for tag in sample.images}) == len(sample.images)
    again = await seed(registry.url, short=True, today=TODAY, wait=10)
    assert again == digests
