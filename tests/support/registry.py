"""Start the real CNCF distribution registry for a test: anonymous, htpasswd, token or TLS."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import aiohttp
import bcrypt
from attrs import define, frozen
from yarl import URL

from tests.support.certs import ServerTls
from tests.support.net import free_port
from tests.support.push import RegistryPusher, basic_authorization
from tests.support.tokenserver import TokenServer
from worker.adapters.registry import (
    RegistryClient,
    RegistryCredentials,
    RegistryLimits,
    RequestStats,
)

__all__ = [
    "FAST_LIMITS",
    "PASSWORD",
    "USER",
    "HtpasswdAuth",
    "RunningRegistry",
    "client_for",
    "registry_binary",
    "run_registry",
]

USER = "ledger-bot"
PASSWORD = "pw-7f3a9c-Never-Log-Me"
"""Test credentials; distinctive so that tests can look for leaks in logs and errors."""

_READY_TIMEOUT = 10.0
_START_ATTEMPTS = 3


@frozen
class HtpasswdAuth:
    """htpasswd Basic auth for the registry: user name → password."""

    users: Mapping[str, str]


@define
class RunningRegistry:
    """A registry process on a loopback port, and how to talk to it."""

    host: str
    url: URL
    root: Path
    log_path: Path
    process: asyncio.subprocess.Process
    tls: ServerTls | None = None
    htpasswd: HtpasswdAuth | None = None
    token_server: TokenServer | None = None

    @property
    def insecure(self) -> bool:
        """Plain http (no TLS configured)."""
        return self.tls is None

    @property
    def ca_bundle(self) -> Path | None:
        """The test CA that signed the registry's certificate, if TLS is on."""
        return None if self.tls is None else self.tls.ca_path

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What aiohttp needs to trust this registry."""
        if self.tls is None:
            return True
        return ssl.create_default_context(cafile=str(self.tls.ca_path))

    def push_authorization(self, repository: str) -> str | None:
        """An ``Authorization`` value allowing push and pull on ``repository``."""
        if self.htpasswd is not None:
            user, password = next(iter(self.htpasswd.users.items()))
            return basic_authorization(user, password)
        if self.token_server is not None:
            token = self.token_server.issue("pusher", [f"repository:{repository}:pull,push"])
            return f"Bearer {token}"
        return None

    def pusher(self, session: aiohttp.ClientSession) -> RegistryPusher:
        """A pusher for this registry using ``session``."""
        return RegistryPusher(
            session=session,
            base_url=self.url,
            ssl=self.ssl_context(),
            authorize=self.push_authorization,
        )

    def log_tail(self, lines: int = 20) -> str:
        """The end of the registry's own log, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def registry_binary() -> str:
    """Path of ``docker-registry`` (Debian package docker-registry); fails clearly if absent."""
    path = shutil.which("docker-registry")
    if path is None:
        raise RuntimeError("docker-registry not found: apt-get install -y docker-registry")
    return path


@asynccontextmanager
async def run_registry(
    workdir: Path,
    *,
    htpasswd: HtpasswdAuth | None = None,
    token_server: TokenServer | None = None,
    tls: ServerTls | None = None,
) -> AsyncIterator[RunningRegistry]:
    """Run a registry until the block ends; config and log go to ``workdir``.

    Storage goes to a fresh folder in RAM (``/dev/shm``) where there is one, which makes
    pushing about twice as fast, else under ``workdir``; it is removed afterwards.
    """
    storage = _storage_dir(workdir)
    try:
        registry = await _start(
            workdir, storage, htpasswd=htpasswd, token_server=token_server, tls=tls
        )
        try:
            yield registry
        finally:
            await _stop(registry.process)
    finally:
        shutil.rmtree(storage, ignore_errors=True)


def _storage_dir(workdir: Path) -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="imageledger-registry-", dir=shm))
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    return storage


async def _start(
    workdir: Path,
    storage: Path,
    *,
    htpasswd: HtpasswdAuth | None,
    token_server: TokenServer | None,
    tls: ServerTls | None,
) -> RunningRegistry:
    """Start on a free port, retrying with another port if the first one was taken."""
    last_error = ""
    for attempt in range(_START_ATTEMPTS):
        host = f"127.0.0.1:{free_port()}"
        config = _config(
            workdir, storage, host, htpasswd=htpasswd, token_server=token_server, tls=tls
        )
        config_path, log_path = _write_files(workdir, attempt, config, htpasswd)
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                registry_binary(), "serve", str(config_path), stdout=log, stderr=log
            )
        registry = RunningRegistry(
            host=host,
            url=URL(f"{'https' if tls else 'http'}://{host}"),
            root=storage,
            log_path=log_path,
            process=process,
            tls=tls,
            htpasswd=htpasswd,
            token_server=token_server,
        )
        if await _wait_ready(registry):
            return registry
        await _stop(process)
        last_error = registry.log_tail()
    raise RuntimeError(f"registry did not start:\n{last_error}")


def _config(
    workdir: Path,
    storage: Path,
    host: str,
    *,
    htpasswd: HtpasswdAuth | None,
    token_server: TokenServer | None,
    tls: ServerTls | None,
) -> dict[str, object]:
    """The registry's configuration (JSON is YAML, so it is written as JSON)."""
    http: dict[str, object] = {"addr": host, "secret": "imageledger-test-secret"}
    if tls is not None:
        http["tls"] = {"certificate": str(tls.cert_path), "key": str(tls.key_path)}
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": http,
    }
    if htpasswd is not None:
        path = str(workdir / "htpasswd")
        config["auth"] = {"htpasswd": {"realm": "imageledger-test", "path": path}}
    elif token_server is not None:
        bundle = token_server.signer.cert_path
        config["auth"] = {
            "token": {
                "realm": str(token_server.realm),
                "service": token_server.service,
                "issuer": token_server.issuer,
                "rootcertbundle": str(bundle),
            }
        }
    return config


def _write_files(
    workdir: Path, attempt: int, config: dict[str, object], htpasswd: HtpasswdAuth | None
) -> tuple[Path, Path]:
    """Write the configuration (and htpasswd file); return config and log paths."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "config.yml"
    config_path.write_text(json.dumps(config, indent=2))
    if htpasswd is not None:
        (workdir / "htpasswd").write_text(_htpasswd_lines(htpasswd.users))
    return config_path, workdir / f"registry-{attempt}.log"


def _htpasswd_lines(users: Mapping[str, str]) -> str:
    """bcrypt htpasswd entries (cost 4: the registry checks one per request)."""
    lines = []
    for user, password in users.items():
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        lines.append(f"{user}:{hashed}\n")
    return "".join(lines)


async def _wait_ready(registry: RunningRegistry) -> bool:
    """Poll ``GET /v2/`` until it answers 200 or 401; False if the process died or hung."""
    deadline = asyncio.get_running_loop().time() + _READY_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            if registry.process.returncode is not None:
                return False
            with suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(
                    registry.url / "v2/",
                    ssl=registry.ssl_context(),
                    timeout=aiohttp.ClientTimeout(total=1),
                ) as response:
                    if response.status in (200, 401):
                        return True
            await asyncio.sleep(0.02)
    return False


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Terminate the registry, killing it if it does not stop promptly."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout=5)
    except TimeoutError:
        process.kill()
        await process.wait()


FAST_LIMITS = RegistryLimits(
    request_timeout=2.0, backoff_base=0.01, backoff_max=0.05, retry_after_max=2.0
)
"""Limits for tests: same behaviour as production, shorter waits."""


def client_for(
    registry: RunningRegistry,
    session: aiohttp.ClientSession,
    *,
    host: str | None = None,
    credentials: RegistryCredentials | None = None,
    limits: RegistryLimits = FAST_LIMITS,
    stats: RequestStats | None = None,
) -> RegistryClient:
    """A `RegistryClient` for ``registry`` (or for ``host``, e.g. a proxy in front of it)."""
    return RegistryClient(
        session,
        host or registry.host,
        insecure=registry.insecure,
        credentials=credentials,
        ca_bundle=registry.ca_bundle,
        limits=limits,
        stats=stats,
    )
