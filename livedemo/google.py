"""``./demo --source google``: the stand-in Google (OAuth token endpoint and Artifact Registry)
in the demo's process, serving what the demo pushed to its registry.

The worker lists the stand-in Artifact Registry with ``dockerImages.list`` and gets its
token from the stand-in OAuth endpoint through google-auth's real signed-JWT exchange, with
a service-account key generated for the demo (``GOOGLE_APPLICATION_CREDENTIALS``). The CNCF
registry stays the Docker API of the images (``dockerEndpoint``): the stand-in lists what
was pushed there, under the names of ``{location}-docker.pkg.dev``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from attrs import frozen

from tests.support.artifact_registry import ArtifactRegistryStandIn
from tests.support.google_oauth import OAuthStandIn, ServiceAccountKey

__all__ = ["GOOGLE_HOST", "GOOGLE_PATH", "GoogleDemo", "google_source", "start_google"]

LOCATION, PROJECT, REPOSITORY, IMAGE = "us-central1", "imageledger-demo", "lab", "sciplat-lab"
GOOGLE_PATH = f"{PROJECT}/{REPOSITORY}/{IMAGE}"
"""The repository path of the images, on the Docker API as in their names."""
GOOGLE_HOST = f"{LOCATION}-docker.pkg.dev"


@frozen
class GoogleDemo:
    """The running stand-ins and the key file the worker's credentials come from."""

    registry: ArtifactRegistryStandIn
    oauth: OAuthStandIn
    key_file: Path

    def summary(self) -> str:
        """What the worker asked of the stand-ins, for the narration."""
        answered = sum(1 for r in self.registry.requests if r.status == 200)
        return (
            f"{len(self.registry.requests)} dockerImages.list requests ({answered} answered"
            f" 200), {len(self.oauth.grants)} access token(s) issued for signed-JWT grants"
        )

    def serve(self, digests: Mapping[str, str]) -> None:
        """List these tags (tag -> digest) from now on."""
        self.registry.serve_tags(IMAGE, digests)


async def start_google(stack: AsyncExitStack, workdir: Path) -> GoogleDemo:
    """Start both stand-ins on loopback ports, stopped when ``stack`` closes."""
    key = ServiceAccountKey.generate("imageledger-demo@imageledger-demo.iam.gserviceaccount.com")
    registry = ArtifactRegistryStandIn(PROJECT, LOCATION, REPOSITORY)
    oauth = OAuthStandIn(key, on_issue=registry.accept)
    await oauth.start()
    stack.push_async_callback(oauth.stop)
    await registry.start()
    stack.push_async_callback(registry.stop)
    key_file = key.write(workdir / "google-key.json", oauth.token_uri, project_id=PROJECT)
    return GoogleDemo(registry, oauth, key_file)


def google_source(google: GoogleDemo, docker_host: str) -> dict[str, Any]:
    """The worker's ``images.source``: the stand-in's API, HEADs to the CNCF registry."""
    return {
        "type": "google",
        "location": LOCATION,
        "projectId": PROJECT,
        "repository": REPOSITORY,
        "image": IMAGE,
        "endpoint": str(google.registry.endpoint),
        "dockerEndpoint": f"http://{docker_host}",
    }
