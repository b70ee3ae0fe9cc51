"""A stand-in Google OAuth 2.0 token endpoint, and service-account keys made in the test.

The endpoint takes the grant ``google-auth`` really sends for a service account
(``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` with a JWT signed by the key's
private key), checks the signature with the public key of the key it was given, the
issuer, audience, expiry and scope, and answers ``{access_token, expires_in, token_type}``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import jwt
from aiohttp import web
from attrs import define, field, frozen
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

from tests.support.net import LoopbackSite

__all__ = ["CLOUD_PLATFORM", "JWT_BEARER", "OAuthStandIn", "ServiceAccountKey", "TokenGrant"]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
AUDIENCE = "https://oauth2.googleapis.com/token"
"""The ``aud`` of a service account's grant: Google's token endpoint, whatever the key's
``token_uri`` (the stand-in checks it as Google does)."""


@frozen(repr=False)
class ServiceAccountKey:
    """A service-account key file's contents, with the public half kept for checking."""

    client_email: str
    private_key_id: str
    private_pem: str
    public_pem: bytes

    @classmethod
    def generate(
        cls, email: str = "ledger@imageledger-test.iam.gserviceaccount.com"
    ) -> ServiceAccountKey:
        """A fresh RSA key (2048 bits, as Google's)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(email, secrets.token_hex(20), private, public)

    def write(self, path: Path, token_uri: URL | str, project_id: str = "imageledger-test") -> Path:
        """The key file as the Cloud console downloads it, its ``token_uri`` as given."""
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": self.private_key_id,
            "private_key": self.private_pem,
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": str(token_uri),
            "universe_domain": "googleapis.com",
        }
        path.write_text(json.dumps(document, indent=2))
        path.chmod(0o600)
        return path


@frozen
class TokenGrant:
    """One exchange the endpoint answered: who, with which scopes, and the token given."""

    issuer: str
    scopes: tuple[str, ...]
    access_token: str


@define
class OAuthStandIn:
    """``POST /token`` of a stand-in Google OAuth server on a loopback port.

    ``lifetime`` is the ``expires_in`` of the tokens issued; ``on_issue`` hears each new
    access token (the stand-in Artifact Registry accepts it). ``failures_to_send`` answers
    the next exchanges with 500 ``internal_failure``.
    """

    key: ServiceAccountKey
    lifetime: int = 3600
    on_issue: Callable[[str], None] | None = None
    token_factory: Callable[[], str] = lambda: "ya29.standin-" + secrets.token_urlsafe(24)
    failures_to_send: int = 0
    grants: list[TokenGrant] = field(factory=list)
    rejected: list[str] = field(factory=list)
    _site: LoopbackSite = field(factory=LoopbackSite, init=False)

    @property
    def token_uri(self) -> URL:
        """The token endpoint, for the key file's ``token_uri``."""
        return URL(f"http://127.0.0.1:{self._site.port}/token")

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_post("/token", self._token)
        await self._site.start(app)

    async def stop(self) -> None:
        """Stop listening."""
        await self._site.stop()

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if self.failures_to_send > 0:
            self.failures_to_send -= 1
            return _oauth_error("internal_failure", "stand-in failure", 500)
        if form.get("grant_type") != JWT_BEARER:
            return self._reject("unsupported_grant_type", f"grant {form.get('grant_type')!r}")
        assertion = form.get("assertion")
        if not isinstance(assertion, str):
            return self._reject("invalid_request", "no assertion")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self.key.public_pem,
                algorithms=["RS256"],
                audience=AUDIENCE,
                issuer=self.key.client_email,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.PyJWTError as exc:
            return self._reject("invalid_grant", f"bad assertion: {exc}")
        if header.get("kid") != self.key.private_key_id:
            return self._reject("invalid_grant", "unknown key id")
        if claims["exp"] - claims["iat"] > 3600 or claims["exp"] < time.time():
            return self._reject("invalid_grant", "assertion lifetime")
        scopes = tuple(str(claims.get("scope", "")).split())
        if CLOUD_PLATFORM not in scopes:
            return self._reject("invalid_scope", f"scopes {scopes}")
        token = self.token_factory()
        self.grants.append(TokenGrant(claims["iss"], scopes, token))
        if self.on_issue is not None:
            self.on_issue(token)
        return web.json_response(
            {"access_token": token, "expires_in": self.lifetime, "token_type": "Bearer"}
        )

    def _reject(self, error: str, why: str) -> web.Response:
        self.rejected.append(f"{error}: {why}")
        return _oauth_error(error, why, 400)


def _oauth_error(error: str, description: str, status: int) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)
