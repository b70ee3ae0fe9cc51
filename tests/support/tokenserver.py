"""A registry token service in the test process, issuing ES256 JWTs the registry trusts."""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

import jwt
from aiohttp import web
from attrs import define, field, frozen
from yarl import URL

from tests.support.certs import SigningCert
from tests.support.net import LoopbackSite

__all__ = ["TokenRequest", "TokenServer"]

SERVICE = "imageledger-test-registry"
ISSUER = "imageledger-test-issuer"
_EXPIRED_AGO = 600
"""Seconds in the past for a deliberately expired token (beyond the registry's leeway)."""


@frozen
class TokenRequest:
    """One token request as the token service saw it (for protocol assertions)."""

    query: tuple[tuple[str, str], ...]
    user: str | None
    sent_credentials: bool


@define
class TokenServer:
    """A distribution token service: Basic-authenticated (or anonymous) pull/push tokens.

    ``lifetime`` is both the JWT ``exp`` and the advertised ``expires_in``. The next
    ``expired_to_issue`` tokens are already expired (by more than the registry's leeway) while
    still advertising ``lifetime``, so a client meets a 401 on a token it believes valid.
    """

    signer: SigningCert
    users: Mapping[str, str] = field(factory=dict)
    anonymous_pull: bool = True
    lifetime: int = 300
    expired_to_issue: int = 0
    service: str = SERVICE
    issuer: str = ISSUER
    requests: list[TokenRequest] = field(factory=list)
    _site: LoopbackSite = field(factory=LoopbackSite, init=False)

    @property
    def url(self) -> URL:
        """Base URL of the running service."""
        return URL(f"http://127.0.0.1:{self._site.port}")

    @property
    def realm(self) -> URL:
        """The token endpoint, as the registry's ``auth.token.realm``."""
        return self.url / "token"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_get("/token", self._handle)
        await self._site.start(app)

    async def stop(self) -> None:
        """Stop listening."""
        await self._site.stop()

    def issue(self, subject: str, scopes: list[str], *, push: bool = True) -> str:
        """A token for ``scopes`` (``repository:name:actions``), bypassing the HTTP endpoint."""
        allowed = {"pull", "push"} if push else {"pull"}
        return self._token(subject, _access(scopes, allowed), expired=False, lifetime=3600)

    def _token(
        self,
        subject: str,
        access: list[dict[str, object]],
        *,
        expired: bool,
        lifetime: int | None = None,
    ) -> str:
        now = int(time.time())
        exp = now - _EXPIRED_AGO if expired else now + (lifetime or self.lifetime)
        claims = {
            "iss": self.issuer,
            "aud": self.service,
            "sub": subject,
            "iat": now - (_EXPIRED_AGO + 60 if expired else 0),
            "nbf": now - (_EXPIRED_AGO + 60 if expired else 5),
            "exp": exp,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        x5c = [base64.b64encode(self.signer.der).decode("ascii")]
        return jwt.encode(claims, self.signer.private_key, algorithm="ES256", headers={"x5c": x5c})

    async def _handle(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization")
        user = _basic_user(header, self.users)
        self.requests.append(
            TokenRequest(
                query=tuple(request.query.items()),
                user=user,
                sent_credentials=header is not None,
            )
        )
        if header is not None and user is None:
            return web.json_response({"errors": [{"code": "UNAUTHORIZED"}]}, status=401)
        if user is None and not self.anonymous_pull:
            return web.json_response({"errors": [{"code": "UNAUTHORIZED"}]}, status=401)
        allowed = {"pull", "push"} if user is not None else {"pull"}
        access = _access(request.query.getall("scope", []), allowed)
        expired = self.expired_to_issue > 0
        self.expired_to_issue = max(0, self.expired_to_issue - 1)
        token = self._token(user or "anonymous", access, expired=expired)
        issued_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return web.json_response(
            {"token": token, "expires_in": self.lifetime, "issued_at": issued_at}
        )


def _basic_user(header: str | None, users: Mapping[str, str]) -> str | None:
    """The user named by a valid Basic ``Authorization`` header, else None."""
    if header is None or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header.removeprefix("Basic "), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, _, password = decoded.partition(":")
    return name if users.get(name) == password else None


def _access(scopes: list[str], allowed: set[str]) -> list[dict[str, object]]:
    """The ``access`` claim for requested ``repository:name:actions`` scopes."""
    access: list[dict[str, object]] = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        granted = [action for action in actions.split(",") if action in allowed]
        if kind == "repository" and name:
            access.append({"type": kind, "name": name, "actions": granted})
    return access
