"""pytest fixtures: real registries (anonymous, Basic, token, TLS) and a fault proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.certs import make_server_tls, make_signing_cert
from tests.support.faultproxy import FaultProxy
from tests.support.registry import PASSWORD, USER, HtpasswdAuth, RunningRegistry, run_registry
from tests.support.tokenserver import TokenServer

__all__ = [
    "basic_registry",
    "fault_proxy",
    "registry",
    "registry_session",
    "tls_registry",
    "token_registry",
    "token_server",
]


@pytest.fixture
async def registry_session() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session for the test's clients and pushers."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    """An anonymous plain-http registry of this test's own."""
    async with run_registry(tmp_path / "registry") as running:
        yield running


@pytest.fixture
async def basic_registry(tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    """A registry with htpasswd Basic auth for `USER` / `PASSWORD`."""
    auth = HtpasswdAuth(users={USER: PASSWORD})
    async with run_registry(tmp_path / "basic-registry", htpasswd=auth) as running:
        yield running


@pytest.fixture
async def token_server(tmp_path: Path) -> AsyncIterator[TokenServer]:
    """A token service knowing `USER` / `PASSWORD`, anonymous pull allowed."""
    server = TokenServer(signer=make_signing_cert(tmp_path / "signer"), users={USER: PASSWORD})
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def token_registry(
    tmp_path: Path, token_server: TokenServer
) -> AsyncIterator[RunningRegistry]:
    """A registry with token auth, trusting `token_server`."""
    async with run_registry(tmp_path / "token-registry", token_server=token_server) as running:
        yield running


@pytest.fixture
async def tls_registry(tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    """An anonymous registry on https with a certificate from a test CA (``ca_bundle``)."""
    tls = make_server_tls(tmp_path / "tls")
    async with run_registry(tmp_path / "tls-registry", tls=tls) as running:
        yield running


@pytest.fixture
async def fault_proxy(registry: RunningRegistry) -> AsyncIterator[FaultProxy]:
    """A fault-injecting proxy in front of `registry`; no faults until a test adds some."""
    proxy = FaultProxy(upstream=registry.url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
