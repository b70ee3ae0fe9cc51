"""Registry credentials: explicit user and password, or a ``.dockerconfigjson`` file."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any, Protocol

from attrs import frozen

from .errors import RegistryCredentialsError

__all__ = ["BasicCredentials", "DockerCredentialStore", "RegistryCredentials"]


class BasicCredentials(Protocol):
    """What the client sends for HTTP Basic (fixed, or a token renewed outside the client,
    as a Google access token under ``oauth2accesstoken``)."""

    def basic_authorization(self) -> str:
        """The ``Authorization`` header value for HTTP Basic, as of now."""


@frozen(repr=False)
class RegistryCredentials:
    """A user name and password (or token) for HTTP Basic auth; never printed."""

    username: str
    password: str

    def __repr__(self) -> str:
        return "RegistryCredentials(<hidden>)"

    def basic_authorization(self) -> str:
        """The ``Authorization`` header value for HTTP Basic."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@frozen(repr=False)
class DockerCredentialStore:
    """Credentials read from a ``.dockerconfigjson`` file, in file order, keyed by host."""

    entries: tuple[tuple[str, RegistryCredentials], ...]

    def __repr__(self) -> str:
        hosts = ", ".join(host for host, _ in self.entries)
        return f"DockerCredentialStore(hosts=[{hosts}])"

    @classmethod
    def from_file(cls, path: Path | str) -> DockerCredentialStore:
        """Read a ``.dockerconfigjson`` file; a missing or malformed file is an error."""
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise RegistryCredentialsError(f"cannot read docker config {path}: {exc}") from exc
        return cls.from_json(raw, source=str(path))

    @classmethod
    def from_json(cls, raw: bytes | str, *, source: str = "docker config") -> DockerCredentialStore:
        """Parse the ``{"auths": {host: {"auth": base64(user:pass)}}}`` shape.

        ``username``/``password`` fields are used when ``auth`` is absent; entries with
        neither (identity tokens, helpers) are skipped.
        """
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise RegistryCredentialsError(f"{source} is not valid JSON") from exc
        auths = data.get("auths") if isinstance(data, dict) else None
        if not isinstance(auths, dict):
            raise RegistryCredentialsError(f"{source} has no 'auths' object")
        entries: list[tuple[str, RegistryCredentials]] = []
        for key, entry in auths.items():
            credentials = _entry_credentials(entry, key, source)
            if credentials is not None:
                entries.append((_normalize_host(key), credentials))
        return cls(entries=tuple(entries))

    def lookup(self, host: str) -> RegistryCredentials | None:
        """Credentials for ``host``: exact key, else the first key ``D`` with host ``*.D``."""
        host = host.lower()
        for key, credentials in self.entries:
            if key == host:
                return credentials
        for key, credentials in self.entries:
            if host.endswith("." + key):
                return credentials
        return None


def _normalize_host(key: str) -> str:
    """``https://index.docker.io/v1/`` → ``index.docker.io``; plain hosts are lower-cased."""
    key = key.strip().lower()
    if "://" in key:
        key = key.split("://", 1)[1]
    return key.split("/", 1)[0]


def _entry_credentials(entry: Any, key: str, source: str) -> RegistryCredentials | None:
    """Credentials from one ``auths`` entry; errors name the host, never the content."""
    if not isinstance(entry, dict):
        raise RegistryCredentialsError(f"{source}: entry for {key} is not an object")
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise RegistryCredentialsError(f"{source}: auth for {key} is not base64") from exc
        user, sep, secret = decoded.partition(":")
        if not sep:
            raise RegistryCredentialsError(f"{source}: auth for {key} is not user:password")
        return RegistryCredentials(username=user, password=secret)
    username, password = entry.get("username"), entry.get("password")
    if isinstance(username, str) and isinstance(password, str) and username:
        return RegistryCredentials(username=username, password=password)
    return None
