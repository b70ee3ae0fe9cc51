"""``python -m livedemo.seed``: push the demo's sample repository to a registry, then exit.

The one-shot seeder of the compose stack (``compose.yaml``, service ``seed``): releases,
candidates, weeklies, dailies, experimentals, cycle and architecture tags dated from today,
and the ``recommended`` and ``latest_*`` aliases. Pushing again gives the same digests.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import date

import aiohttp
from yarl import URL

from livedemo.repository import REPOSITORY, sample_repository
from tests.support.push import RegistryPusher

__all__ = ["main", "seed"]


async def wait_for_registry(session: aiohttp.ClientSession, base: URL, within: float) -> None:
    """Return once ``GET /v2/`` answers; raise ``TimeoutError`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            async with session.get(base / "v2/") as response:
                if response.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"registry {base} did not answer within {within:.0f} s")
        await asyncio.sleep(0.5)


async def seed(base: URL, *, short: bool, today: date, wait: float = 60.0) -> dict[str, str]:
    """Push the sample repository to the registry at ``base``; tag → digest."""
    sample = sample_repository(today, short=short)
    async with aiohttp.ClientSession() as session:
        await wait_for_registry(session, base, wait)
        pusher = RegistryPusher(session=session, base_url=base, concurrency=16)
        digests = await pusher.push_tags(REPOSITORY, list(sample.images))
        for alias, target in sample.aliases:
            await pusher.tag(REPOSITORY, alias, digests[target])
            digests[alias] = digests[target]
    return digests


def main(argv: list[str] | None = None) -> int:
    """Seed, print one summary line; 1 when the registry cannot be reached."""
    parser = argparse.ArgumentParser(prog="python -m livedemo.seed", description=__doc__)
    parser.add_argument("--registry", default="http://127.0.0.1:5000", help="Registry URL.")
    parser.add_argument("--short", action="store_true", help="About 50 tags, not 280.")
    args = parser.parse_args(argv)
    base = URL(args.registry)
    began = time.monotonic()
    try:
        digests = asyncio.run(seed(base, short=args.short, today=date.today()))
    except (TimeoutError, aiohttp.ClientError, AssertionError) as exc:
        print(f"seed: error: {exc}", file=sys.stderr)
        return 1
    host = base.authority
    print(
        f"seed: pushed {len(digests)} tags to {host}/{REPOSITORY} "
        f"in {time.monotonic() - began:.1f} s (recommended = {digests['recommended']})",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
