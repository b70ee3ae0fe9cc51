"""The Artifact Registry source against the stand-ins: real google-auth token exchange,
every page listed, failures retried or raised, HEADs on the Docker API with the token."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import aiohttp
import pytest
from attrs import evolve
from structlog.testing import capture_logs

from tests.support import conformance as c
from tests.support.artifact_registry import Fault
from tests.support.google_fixtures import GoogleStandIns, google
from tests.support.google_oauth import CLOUD_PLATFORM
from tests.support.registry import FAST_LIMITS, HtpasswdAuth, run_registry
from worker.adapters.registry import (
    GOOGLE_DOCKER_USER,
    ArtifactRegistryLister,
    ArtifactRegistryTagSource,
    GoogleAccessTokens,
    GoogleHeads,
    RegistryAuthError,
    RegistryCredentialsError,
    RegistryRateLimitedError,
    RegistryServerError,
    RegistryTagSource,
)
from worker.config import Config, GoogleSource
from worker.domain.errors import SourceUnavailableError
from worker.domain.refresh import HeadFound, HeadMissing
from worker.factory.sources import registry_client

__all__ = ["google"]

CONFIG = c.config("gar")
SOURCE = CONFIG.images.source
assert isinstance(SOURCE, GoogleSource)
PARENT = (SOURCE.project_id, SOURCE.location, SOURCE.repository)


def lister(
    stand_ins: GoogleStandIns,
    session: aiohttp.ClientSession,
    tokens: GoogleAccessTokens,
    **limits: int,
) -> ArtifactRegistryLister:
    endpoint = str(stand_ins.registry.endpoint)
    fast = evolve(FAST_LIMITS, **limits)
    return ArtifactRegistryLister.connect(session, endpoint, PARENT, tokens, limits=fast)


def google_docker(host: str) -> Config:
    """The ``gar`` configuration with HEADs going to ``host`` over plain http."""
    source = CONFIG.images.source
    assert isinstance(source, GoogleSource)
    moved = evolve(source, docker_endpoint=f"http://{host}")
    return evolve(CONFIG, images=evolve(CONFIG.images, source=moved))


async def test_google_auth_does_the_signed_jwt_exchange_and_renews_before_expiry(
    google: GoogleStandIns,
) -> None:
    tokens = GoogleAccessTokens()  # Application Default Credentials: the key file

    first = await tokens.token()
    again = await tokens.token()

    assert google.oauth.rejected == []
    assert [(g.issuer, g.scopes) for g in google.oauth.grants] == [
        ("ledger@imageledger-test.iam.gserviceaccount.com", (CLOUD_PLATFORM,))
    ]
    assert first == again == google.oauth.grants[0].access_token
    assert tokens.refreshes == 1
    assert first not in repr(tokens)
    # A token within five minutes of its expiry is renewed before it is used.
    google.oauth.lifetime = 120
    await tokens.renew()
    short = tokens.current()
    renewed = await tokens.token()
    assert renewed != short
    assert tokens.refreshes == 3


async def test_credentials_missing_or_refused_are_registry_errors(
    google: GoogleStandIns, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    with pytest.raises(RegistryCredentialsError):
        await GoogleAccessTokens().token()
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(google.key_file))
    google.oauth.failures_to_send = 10
    with pytest.raises(RegistryAuthError, match="cannot get a Google access token"):
        await GoogleAccessTokens().token()


async def test_every_page_is_listed_with_the_token(
    google: GoogleStandIns, caplog: pytest.LogCaptureFixture
) -> None:
    listing = google.load("gar", CONFIG)
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as session:
        source = lister(google, session, GoogleAccessTokens(), page_size=2)
        with capture_logs() as logs:
            images = await source.list_images()

    assert [i.uri for i in images] == [e["uri"] for e in listing]
    assert [i.image_size_bytes for i in images] == [e["image_size_bytes"] for e in listing]
    requests = google.registry.requests
    assert len(requests) == (len(listing) + 1) // 2
    assert {r.page_size for r in requests} == {2}
    assert [r.page_token is None for r in requests] == [True] + [False] * (len(requests) - 1)
    token = google.oauth.grants[0].access_token
    assert {r.authorization for r in requests} == {f"Bearer {token}"}
    # Never logged: not by us (structlog), nor by google-auth or aiohttp (logging).
    assert logs
    assert token not in repr(logs)
    assert token not in caplog.text


async def test_the_tag_source_keeps_its_own_image_and_every_architecture(
    google: GoogleStandIns,
) -> None:
    listing = google.load("gar", CONFIG)
    async with aiohttp.ClientSession() as session:
        source = ArtifactRegistryTagSource(
            lister(google, session, GoogleAccessTokens()), CONFIG.images.repository
        )
        tags = await source.list_tags()
        heads = await source.resolve(["w_2077_44-amd64", "recommended", "bogus"])

    expected = [t for e in listing if "/sciplat-lab@" in e["uri"] for t in e["tags"]]
    assert tags == expected
    assert "bogus" not in tags  # some-other-image's tag
    assert "w_2077_44-amd64" in tags
    w43 = next(e for e in listing if "w_2077_43" in e["tags"])["uri"].split("@")[1]
    assert heads["recommended"] == HeadFound(w43)
    assert isinstance(heads["bogus"], HeadMissing)
    cost = source.cost()
    assert [(r.method, r.status, r.count) for r in cost.requests] == [("GET", 200, 1)]


async def test_500_and_503_mid_listing_are_retried(google: GoogleStandIns) -> None:
    google.load("gar", CONFIG)
    google.registry.fail_page(1, Fault(500), Fault(503))
    async with aiohttp.ClientSession() as session:
        source = ArtifactRegistryTagSource(
            lister(google, session, GoogleAccessTokens(), page_size=2), CONFIG.images.repository
        )
        tags = await source.list_tags()

    assert "w_2077_41" in tags
    cost = source.cost()
    assert cost.retries == 2
    statuses = sorted((r.status, r.count) for r in cost.requests)
    assert statuses == [(200, 3), (500, 1), (503, 1)]  # three pages of two


async def test_a_page_failing_every_attempt_fails_the_listing(google: GoogleStandIns) -> None:
    google.load("gar", CONFIG)
    google.registry.fail_page(2, *[Fault(503)] * 10)
    async with aiohttp.ClientSession() as session:
        source = lister(google, session, GoogleAccessTokens(), page_size=2, max_attempts=3)
        with pytest.raises(RegistryServerError, match="UNAVAILABLE"):
            await source.list_images()
    assert [r.status for r in google.registry.requests] == [200, 200, 503, 503, 503]


async def test_resource_exhausted_honours_retry_after_then_fails(google: GoogleStandIns) -> None:
    google.load("gar", CONFIG)
    google.registry.fail_page(1, Fault(429, retry_after=1))
    async with aiohttp.ClientSession() as session:
        source = lister(google, session, GoogleAccessTokens(), page_size=2)
        started = time.monotonic()
        images = await source.list_images()
        waited = time.monotonic() - started

        assert len(images) == 6
        assert waited >= 1.0
        google.registry.requests.clear()
        google.registry.fail_page(0, *[Fault(429)] * 10)
        with pytest.raises(RegistryRateLimitedError, match="RESOURCE_EXHAUSTED"):
            await lister(google, session, GoogleAccessTokens(), max_attempts=3).list_images()
    assert [r.status for r in google.registry.requests] == [429, 429, 429]


async def test_a_refused_token_is_renewed_once(google: GoogleStandIns) -> None:
    google.load("gar", CONFIG)
    tokens = GoogleAccessTokens()
    async with aiohttp.ClientSession() as session:
        source = lister(google, session, tokens)
        await source.list_images()
        google.registry.tokens.clear()  # revoked: the next request answers 401
        images = await source.list_images()
        assert len(images) == 6
        assert tokens.refreshes == 2
        google.registry.tokens.clear()
        google.oauth.on_issue = None  # new tokens are refused too
        with pytest.raises(RegistryAuthError, match="UNAUTHENTICATED"):
            await source.list_images()


async def test_a_listing_failure_is_source_unavailable(google: GoogleStandIns) -> None:
    google.load("gar", CONFIG)
    google.registry.fail_page(0, *[Fault(500)] * 10)
    async with aiohttp.ClientSession() as session:
        source = ArtifactRegistryTagSource(
            lister(google, session, GoogleAccessTokens(), max_attempts=2),
            CONFIG.images.repository,
        )
        with pytest.raises(SourceUnavailableError) as caught:
            await source.list_tags()
    assert caught.value.reason_class == "server_error"


async def test_heads_send_the_access_token_as_oauth2accesstoken(
    google: GoogleStandIns, tmp_path: Path
) -> None:
    """The Docker API of ``*-docker.pkg.dev`` takes the access token as the password of
    ``oauth2accesstoken``: a registry that knows only that user and the token issued
    answers the HEAD, which it would refuse (401) to anyone else."""
    token = "ya29.standin-docker-token"
    google.oauth.token_factory = lambda: token
    auth = HtpasswdAuth(users={GOOGLE_DOCKER_USER: token})
    async with (
        run_registry(tmp_path / "docker", htpasswd=auth) as docker,
        aiohttp.ClientSession() as session,
    ):
        repository = CONFIG.images.repository.repository
        pushed = await docker.pusher(session).push_image(repository, ["w_2077_43"])
        config = google_docker(docker.host)
        tokens = GoogleAccessTokens()
        client = registry_client(config, session, tokens=tokens)
        heads = GoogleHeads(RegistryTagSource(client, config.images.repository), tokens)
        with capture_logs() as logs:
            found = await heads.resolve(["w_2077_43", "w_2099_01"])

    assert found == {"w_2077_43": HeadFound(pushed), "w_2099_01": HeadMissing()}
    assert len(google.oauth.grants) == 1
    assert token not in repr(logs)
