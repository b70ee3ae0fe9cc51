"""Google access tokens from Application Default Credentials, renewed before they expire.

``google.auth.default`` finds the credentials as every Google client does:
``GOOGLE_APPLICATION_CREDENTIALS`` (a service-account key file, whose ``token_uri`` the
signed-JWT grant goes to), gcloud's user credentials, or the metadata server (workload
identity in a cluster). google-auth refreshes synchronously, so a refresh runs in a thread;
one refresh at a time. Tokens are never logged, printed or put in an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import structlog

from .credentials import RegistryCredentials
from .errors import RegistryAuthError, RegistryCredentialsError

__all__ = ["CLOUD_PLATFORM_SCOPE", "GOOGLE_DOCKER_USER", "GoogleAccessTokens", "GoogleDockerLogin"]

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_DOCKER_USER = "oauth2accesstoken"
"""The Docker user name under which ``*-docker.pkg.dev`` takes an access token as password."""
RENEW_BEFORE = timedelta(minutes=5)
"""A token is renewed this long before it expires (google-auth's own margin is smaller)."""
_REFRESH_TIMEOUT = 30.0

log = structlog.get_logger("imageledger.registry.google")


def _default_credentials() -> Any:
    credentials, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    return credentials


class GoogleAccessTokens:
    """The access token of one set of Google credentials, fetched on first use.

    ``credentials`` (a ``google.auth.credentials.Credentials``) defaults to Application
    Default Credentials with the cloud-platform scope, looked up on first use.
    """

    def __init__(
        self,
        credentials: Any = None,
        *,
        renew_before: timedelta = RENEW_BEFORE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._credentials = credentials
        self._renew_before = renew_before
        self._clock = clock
        self._lock = asyncio.Lock()
        self.refreshes = 0
        """Tokens fetched so far (for tests and logs; never the token itself)."""

    def __repr__(self) -> str:
        return f"GoogleAccessTokens(refreshes={self.refreshes})"

    def current(self) -> str | None:
        """The token last fetched, or None before the first."""
        if self._credentials is None:
            return None
        token = self._credentials.token
        return token if isinstance(token, str) and token else None

    async def token(self) -> str:
        """A token valid for at least ``renew_before`` more (fetched now if need be)."""
        async with self._lock:
            if self._stale():
                await self._refresh()
            token = self.current()
        if token is None:
            raise RegistryAuthError("Google credentials gave no access token")
        return token

    async def renew(self) -> None:
        """Fetch a new token now (the API refused the one held)."""
        async with self._lock:
            await self._refresh()

    def _stale(self) -> bool:
        if self.current() is None:
            return True
        expiry = self._credentials.expiry
        if not isinstance(expiry, datetime):
            return False  # credentials whose tokens do not expire
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)  # google-auth keeps naive UTC
        return expiry - self._renew_before <= self._clock()

    async def _refresh(self) -> None:
        try:
            if self._credentials is None:
                self._credentials = await asyncio.to_thread(_default_credentials)
            request = google.auth.transport.requests.Request()
            await asyncio.wait_for(
                asyncio.to_thread(self._credentials.refresh, request), _REFRESH_TIMEOUT
            )
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise RegistryCredentialsError(f"no Google credentials found: {exc}") from exc
        except google.auth.exceptions.GoogleAuthError as exc:
            raise RegistryAuthError(f"cannot get a Google access token: {exc}") from exc
        except TimeoutError as exc:
            message = f"no Google access token within {_REFRESH_TIMEOUT:.0f} s"
            raise RegistryAuthError(message) from exc
        self.refreshes += 1
        log.debug("Google access token renewed", expiry=str(self._credentials.expiry))


class GoogleDockerLogin:
    """Basic credentials for ``*-docker.pkg.dev``: ``oauth2accesstoken`` and the current
    access token (the caller renews it, with ``GoogleAccessTokens.token``, before requests)."""

    def __init__(self, tokens: GoogleAccessTokens) -> None:
        self._tokens = tokens

    def __repr__(self) -> str:
        return "GoogleDockerLogin(<hidden>)"

    def basic_authorization(self) -> str:
        """HTTP Basic of ``oauth2accesstoken`` and the token held now."""
        token = self._tokens.current()
        if token is None:
            raise RegistryAuthError("no Google access token fetched yet")
        return RegistryCredentials(GOOGLE_DOCKER_USER, token).basic_authorization()
