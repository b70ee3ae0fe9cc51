"""Registry authentication: WWW-Authenticate challenges, bearer tokens and their cache."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

import structlog
from attrs import define, field, frozen
from yarl import URL

from .credentials import BasicCredentials
from .errors import RegistryAuthError, safe_url
from .wire import read_quoted_string, read_token, skip

__all__ = [
    "AuthAttempt",
    "Challenge",
    "RegistryAuthenticator",
    "TokenCache",
    "TokenFetcher",
    "TokenGrant",
    "TokenKey",
    "credentials_allowed_for_realm",
    "parse_challenges",
    "parse_token_response",
]

DEFAULT_TOKEN_LIFETIME = 60.0
"""Token lifetime when the token service gives no ``expires_in`` (the token spec's default)."""

MAX_CHALLENGES_PER_REQUEST = 3
"""401 answers one logical request may meet before we give up (guards against loops)."""

_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))")
_FRACTION_RE = re.compile(r"(\.\d{6})\d+")

TokenFetcher = Callable[[URL, str | None], Awaitable[bytes]]
"""Fetch a token URL with an optional ``Authorization`` value and return the body."""


@frozen
class Challenge:
    """One ``WWW-Authenticate`` challenge: scheme (as sent), parameters, or a token68."""

    scheme: str
    params: Mapping[str, str]
    token68: str | None = None

    def is_scheme(self, name: str) -> bool:
        """Whether the scheme is ``name`` (schemes are case-insensitive)."""
        return self.scheme.lower() == name.lower()


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value into its challenges (RFC 9110 section 11).

    Handles several challenges in one value, quoted strings with commas and escaped quotes,
    and token68 credentials. Parameter names are lower-cased. Raises `ValueError`.
    """
    challenges: list[Challenge] = []
    pos = skip(header, 0, " \t,")
    while pos < len(header):
        scheme, pos = read_token(header, pos)
        if not scheme:
            raise ValueError("expected an auth scheme")
        pos = skip(header, pos)
        token68 = _TOKEN68_RE.match(header, pos)
        if token68 is not None:
            challenges.append(Challenge(scheme, {}, token68.group(0)))
            pos = token68.end()
        else:
            params, pos = _read_auth_params(header, pos)
            challenges.append(Challenge(scheme, params))
        pos = skip(header, pos, " \t,")
    return challenges


def _read_auth_params(header: str, pos: int) -> tuple[dict[str, str], int]:
    """Read ``name=value`` pairs until the next challenge's scheme or the end."""
    params: dict[str, str] = {}
    while True:
        start = pos
        pos = skip(header, pos, " \t,")
        name, after_name = read_token(header, pos)
        equals = skip(header, after_name)
        if not name or equals >= len(header) or header[equals] != "=":
            return params, start
        pos = skip(header, equals + 1)
        if pos < len(header) and header[pos] == '"':
            value, pos = read_quoted_string(header, pos)
        else:
            value, pos = read_token(header, pos)
        params.setdefault(name.lower(), value)


def credentials_allowed_for_realm(realm: URL, *, registry_insecure: bool) -> bool:
    """Whether credentials may be sent to a token realm: https, loopback, or insecure mode."""
    if realm.scheme == "https":
        return True
    if realm.scheme != "http":
        return False
    return registry_insecure or _is_loopback(realm.host or "")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@frozen
class TokenKey:
    """What a bearer token is for: the realm, the service and the scope."""

    realm: str
    service: str | None
    scope: str | None


@frozen(repr=False)
class TokenGrant:
    """A token from the token service and how many seconds it remains valid."""

    token: str
    lifetime: float

    def __repr__(self) -> str:
        return f"TokenGrant(<hidden>, lifetime={self.lifetime})"


def parse_token_response(body: bytes, now: float) -> TokenGrant:
    """Read ``token`` (or ``access_token``), ``expires_in`` and ``issued_at``.

    ``now`` is the wall-clock time in epoch seconds. ``issued_at`` shortens the lifetime by
    the token's age, unless the clocks obviously disagree. Raises `ValueError`.
    """
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("token response is not a JSON object")
    token = data.get("token") or data.get("access_token")
    if not isinstance(token, str) or not token:
        raise ValueError("token response has no token")
    expires_in = data.get("expires_in")
    lifetime = DEFAULT_TOKEN_LIFETIME
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        lifetime = float(expires_in)
    issued_at = data.get("issued_at")
    if isinstance(issued_at, str):
        age = now - _parse_rfc3339(issued_at)
        if 0 <= age <= lifetime:
            lifetime -= age
    return TokenGrant(token=token, lifetime=lifetime)


def _parse_rfc3339(value: str) -> float:
    """Epoch seconds of an RFC 3339 time (nanosecond fractions are truncated)."""
    value = _FRACTION_RE.sub(r"\1", value.strip().replace("z", "Z"))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("token response has a malformed issued_at") from exc
    if parsed.tzinfo is None:
        raise ValueError("token response issued_at has no time zone")
    return parsed.timestamp()


@define
class _CachedToken:
    token: str
    renew_at: float


@define
class TokenCache:
    """Bearer tokens per (realm, service, scope), renewed a little before they expire."""

    clock: Callable[[], float] = time.monotonic
    _tokens: dict[TokenKey, _CachedToken] = field(factory=dict, init=False)
    _locks: dict[TokenKey, asyncio.Lock] = field(factory=dict, init=False)

    def get(self, key: TokenKey) -> str | None:
        """The cached token for ``key`` if it is not due for renewal."""
        cached = self._tokens.get(key)
        if cached is None or self.clock() >= cached.renew_at:
            return None
        return cached.token

    def put(self, key: TokenKey, grant: TokenGrant) -> None:
        """Cache a token; it is renewed at 90% of its lifetime, at most 10 s early."""
        margin = min(10.0, grant.lifetime * 0.1)
        renew_at = self.clock() + grant.lifetime - margin
        self._tokens[key] = _CachedToken(token=grant.token, renew_at=renew_at)

    def invalidate(self, key: TokenKey, token: str) -> None:
        """Forget ``token`` for ``key`` (if another task replaced it already, keep that)."""
        cached = self._tokens.get(key)
        if cached is not None and cached.token == token:
            del self._tokens[key]

    def lock(self, key: TokenKey) -> asyncio.Lock:
        """A lock so that one task fetches a token for ``key`` while the others wait."""
        return self._locks.setdefault(key, asyncio.Lock())


@define
class AuthAttempt:
    """Authentication state of one logical request (across its auth retries)."""

    fetch_token: TokenFetcher
    sent: str | None = None
    fetched_token: bool = False
    challenges: int = 0


class RegistryAuthenticator:
    """Decides the ``Authorization`` header for registry requests and reacts to 401s.

    Starts anonymous. After a Basic challenge, Basic credentials go with every request. After
    a Bearer challenge, a token for the challenge's (realm, service, scope) is fetched, cached
    and sent; other repositories of the same registry get a token for their pull scope before
    their first request. A 401 on a cached token renews it once.
    """

    def __init__(
        self,
        registry: str,
        credentials: BasicCredentials | None,
        *,
        insecure: bool,
        cache: TokenCache | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._credentials = credentials
        self._insecure = insecure
        self._cache = cache if cache is not None else TokenCache()
        self._wall_clock = wall_clock
        self._basic = False
        self._keys: dict[str, TokenKey] = {}
        self._bearer_realm: tuple[str, str | None] | None = None
        self._log = structlog.get_logger(__name__, registry=registry)

    def __repr__(self) -> str:
        return f"RegistryAuthenticator(registry={self._registry!r})"

    async def authorization(self, repository: str, attempt: AuthAttempt) -> str | None:
        """The ``Authorization`` value for a request on ``repository`` (None: anonymous)."""
        value: str | None = None
        if self._basic and self._credentials is not None:
            value = self._credentials.basic_authorization()
        else:
            key = self._key_for(repository)
            if key is not None:
                token, fetched = await self._token(key, attempt, stale=None)
                attempt.fetched_token = attempt.fetched_token or fetched
                value = f"Bearer {token}"
        attempt.sent = value
        return value

    async def unauthorized(
        self, repository: str, challenges: list[str], attempt: AuthAttempt, *, url: URL, method: str
    ) -> None:
        """React to a 401 so that a retry may succeed, or raise `RegistryAuthError`."""
        attempt.challenges += 1
        if attempt.challenges > MAX_CHALLENGES_PER_REQUEST:
            raise RegistryAuthError(
                "registry keeps answering 401", method=method, url=url, status=401
            )
        try:
            parsed = [c for header in challenges for c in parse_challenges(header)]
        except ValueError as exc:
            raise RegistryAuthError(
                f"malformed WWW-Authenticate header: {exc}", method=method, url=url, status=401
            ) from exc
        bearer = next((c for c in parsed if c.is_scheme("bearer")), None)
        if bearer is not None:
            await self._on_bearer(repository, bearer, attempt, url=url, method=method)
        elif any(c.is_scheme("basic") for c in parsed):
            self._on_basic(attempt, url=url, method=method)
        else:
            schemes = ", ".join(c.scheme for c in parsed) or "none"
            raise RegistryAuthError(
                f"registry asks for unsupported auth (schemes: {schemes})",
                method=method,
                url=url,
                status=401,
            )

    def _on_basic(self, attempt: AuthAttempt, *, url: URL, method: str) -> None:
        if self._credentials is None:
            raise RegistryAuthError(
                "registry requires credentials and none are configured",
                method=method,
                url=url,
                status=401,
            )
        if attempt.sent == self._credentials.basic_authorization():
            raise RegistryAuthError(
                "registry rejected the configured credentials", method=method, url=url, status=401
            )
        self._log.debug("Registry asks for Basic auth")
        self._basic = True

    async def _on_bearer(
        self, repository: str, challenge: Challenge, attempt: AuthAttempt, *, url: URL, method: str
    ) -> None:
        key = self._key_from_challenge(challenge, url=url, method=method)
        self._keys[repository] = key
        self._bearer_realm = (key.realm, key.service)
        if attempt.fetched_token:
            raise RegistryAuthError(
                "registry rejected a freshly issued token", method=method, url=url, status=401
            )
        stale = None
        if attempt.sent is not None and attempt.sent.startswith("Bearer "):
            stale = attempt.sent.removeprefix("Bearer ")
            self._cache.invalidate(key, stale)
        _, fetched = await self._token(key, attempt, stale=stale)
        attempt.fetched_token = fetched

    def _key_from_challenge(self, challenge: Challenge, *, url: URL, method: str) -> TokenKey:
        realm = challenge.params.get("realm", "")
        parsed = URL(realm) if realm else None
        if parsed is None or not parsed.is_absolute() or parsed.scheme not in ("http", "https"):
            raise RegistryAuthError(
                "Bearer challenge has no usable realm", method=method, url=url, status=401
            )
        return TokenKey(
            realm=realm,
            service=challenge.params.get("service") or None,
            scope=challenge.params.get("scope") or None,
        )

    def _key_for(self, repository: str) -> TokenKey | None:
        key = self._keys.get(repository)
        if key is None and self._bearer_realm is not None:
            realm, service = self._bearer_realm
            key = TokenKey(realm=realm, service=service, scope=f"repository:{repository}:pull")
        return key

    async def _token(
        self, key: TokenKey, attempt: AuthAttempt, *, stale: str | None
    ) -> tuple[str, bool]:
        """A valid token for ``key`` other than ``stale``, and whether we fetched it."""
        token = self._cache.get(key)
        if token is not None and token != stale:
            return token, False
        async with self._cache.lock(key):
            token = self._cache.get(key)
            if token is not None and token != stale:
                return token, False
            grant = await self._request_token(key, attempt.fetch_token)
            self._cache.put(key, grant)
            return grant.token, True

    async def _request_token(self, key: TokenKey, fetch_token: TokenFetcher) -> TokenGrant:
        """GET realm?service=…&scope=… with Basic credentials where they may go."""
        realm = URL(key.realm)
        query = [("service", key.service)] if key.service else []
        query += [("scope", scope) for scope in (key.scope or "").split()]
        authorization = None
        if self._credentials is not None:
            if credentials_allowed_for_realm(realm, registry_insecure=self._insecure):
                authorization = self._credentials.basic_authorization()
            else:
                self._log.warning(
                    "Not sending credentials to a token realm over plain http",
                    realm=safe_url(realm),
                )
        body = await fetch_token(realm.extend_query(query), authorization)
        try:
            grant = parse_token_response(body, self._wall_clock())
        except ValueError as exc:
            raise RegistryAuthError(
                f"cannot read the token response: {exc}", method="GET", url=realm, status=200
            ) from exc
        self._log.debug(
            "Obtained registry token",
            realm=safe_url(realm),
            service=key.service,
            scope=key.scope,
            lifetime=grant.lifetime,
            anonymous=authorization is None,
        )
        return grant
