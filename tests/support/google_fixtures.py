"""pytest fixtures: a stand-in Google (OAuth token endpoint and Artifact Registry) of the
test's own, and Application Default Credentials pointing at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from attrs import evolve, frozen

from tests.support import conformance as c
from tests.support.artifact_registry import ArtifactRegistryStandIn
from tests.support.google_oauth import OAuthStandIn, ServiceAccountKey
from worker.config import Config, GoogleSource

__all__ = ["GoogleStandIns", "google", "google_config"]


@frozen
class GoogleStandIns:
    """The stand-ins, and the key file that ``GOOGLE_APPLICATION_CREDENTIALS`` names."""

    oauth: OAuthStandIn
    registry: ArtifactRegistryStandIn
    key_file: Path

    def load(self, name: str, config: Config) -> list[dict[str, Any]]:
        """Serve ``registry/<name>.json`` (the reference's listing) as the repository of
        ``config``'s Google source, and return it."""
        source = config.images.source
        assert isinstance(source, GoogleSource)
        self.registry.project = source.project_id
        self.registry.location = source.location
        self.registry.repository = source.repository
        listing: list[dict[str, Any]] = c.read_json(f"registry/{name}.json")
        self.registry.load(listing)
        return listing


def google_config(config: Config, stand_ins: GoogleStandIns, **source: Any) -> Config:
    """``config`` (a Google source) listing through the stand-in Artifact Registry."""
    google = config.images.source
    assert isinstance(google, GoogleSource)
    moved = evolve(google, endpoint=str(stand_ins.registry.endpoint), **source)
    return evolve(config, images=evolve(config.images, source=moved))


@pytest.fixture
async def google(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[GoogleStandIns]:
    """Stand-ins for the repository of the ``gar`` fixtures; the key file of a service
    account generated now is the Application Default Credentials."""
    key = ServiceAccountKey.generate()
    registry = ArtifactRegistryStandIn("rubin-shared-services-71ec", "us-central1", "sciplat")
    oauth = OAuthStandIn(key, on_issue=registry.accept)
    await oauth.start()
    await registry.start()
    try:
        key_file = key.write(tmp_path / "google" / "key.json", oauth.token_uri)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
        yield GoogleStandIns(oauth, registry, key_file)
    finally:
        await registry.stop()
        await oauth.stop()
