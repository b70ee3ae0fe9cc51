"""Credentials and tokens never show in logs, errors or reprs, whatever the auth flow."""

from __future__ import annotations

import base64
import logging

import aiohttp
import pytest
import structlog

from tests.support.faultproxy import FaultProxy
from tests.support.registry import PASSWORD, USER, RunningRegistry, client_for
from tests.support.tokenserver import TokenServer
from worker.adapters.registry import (
    DockerCredentialStore,
    RegistryAuthError,
    RegistryCredentials,
    RegistryError,
)

REPO = "lsstsqre/sciplat-lab"
WRONG = "not-" + PASSWORD
SECRETS = [
    PASSWORD,
    base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
    base64.b64encode(f"{USER}:{WRONG}".encode()).decode(),
    "eyJ",  # every JWT starts so
    "Authorization",
]


def _texts(error: BaseException) -> list[str]:
    """Everything an error could print: message, repr, args, and its causes."""
    texts: list[str] = []
    current: BaseException | None = error
    while current is not None:
        texts += [str(current), repr(current), repr(current.args)]
        current = current.__cause__ or current.__context__
    return texts


async def _basic_flows(
    registry: RunningRegistry, session: aiohttp.ClientSession, errors: list[RegistryError]
) -> list[str]:
    proxy = FaultProxy(upstream=registry.url)
    await proxy.start()
    try:
        proxy.respond("/tags/list", 503)
        proxy.respond("/manifests/", 429, headers={"Retry-After": "0"})
        good = RegistryCredentials(username=USER, password=PASSWORD)
        client = client_for(registry, session, host=proxy.host, credentials=good)
        await client.list_tags(REPO)
        await client.get_digest(REPO, "w_2077_43")
        wrong = RegistryCredentials(username=USER, password=WRONG)
        with pytest.raises(RegistryAuthError) as caught:
            await client_for(registry, session, credentials=wrong).list_tags(REPO)
        errors.append(caught.value)
        return [repr(client), repr(good), repr(wrong)]
    finally:
        await proxy.stop()


async def _token_flows(
    registry: RunningRegistry,
    server: TokenServer,
    session: aiohttp.ClientSession,
    errors: list[RegistryError],
) -> None:
    good = RegistryCredentials(username=USER, password=PASSWORD)
    await client_for(registry, session, credentials=good).get_digest(REPO, "w_2077_43")
    server.anonymous_pull = False
    wrong = RegistryCredentials(username=USER, password=WRONG)
    with pytest.raises(RegistryAuthError) as refused:
        await client_for(registry, session, credentials=wrong).list_tags(REPO)
    errors.append(refused.value)
    server.anonymous_pull = True
    server.expired_to_issue = 1
    with pytest.raises(RegistryAuthError) as rejected:
        await client_for(registry, session, credentials=good).list_tags(REPO)
    errors.append(rejected.value)


async def test_credentials_never_appear_in_logs_errors_or_reprs(
    basic_registry: RunningRegistry,
    token_registry: RunningRegistry,
    token_server: TokenServer,
    registry_session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for registry in (basic_registry, token_registry):
        await registry.pusher(registry_session).push_image(REPO, ["w_2077_43"])
    caplog.set_level(logging.DEBUG)
    errors: list[RegistryError] = []

    with structlog.testing.capture_logs() as events:
        reprs = await _basic_flows(basic_registry, registry_session, errors)
        await _token_flows(token_registry, token_server, registry_session, errors)

    store = DockerCredentialStore.from_json(
        f'{{"auths": {{"example.org": {{"username": "{USER}", "password": "{PASSWORD}"}}}}}}'
    )
    texts = [repr(event) for event in events] + [caplog.text, repr(store), *reprs]
    texts += [text for error in errors for text in _texts(error)]
    assert len(errors) == 3
    assert any(event["event"] == "Retrying registry request" for event in events)
    assert any(event["event"] == "Obtained registry token" for event in events)
    for secret in SECRETS:
        leaks = [text for text in texts if secret in text]
        assert not leaks, f"{secret[:6]}… leaked into: {leaks[:3]}"
