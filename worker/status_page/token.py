"""The optional bearer token of the worker's HTTP pages (``IMAGELEDGER_HTTP_TOKEN``).

One check for every protected route: a request is let in when no token is configured, or
when it presents the token as ``Authorization: Bearer <token>`` or in the cookie the status
page's sign-in form sets (a browser cannot send a header from a link). Tokens are compared
in constant time.
"""

from __future__ import annotations

import hmac

from aiohttp import web

__all__ = ["COOKIE", "authorized", "matches", "presented_token"]

COOKIE = "imageledger_token"


def matches(given: str | None, token: str) -> bool:
    """Whether ``given`` is the token (constant time)."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def presented_token(request: web.Request) -> str | None:
    """The token a request presents: its bearer token, else the sign-in cookie."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE)


def authorized(request: web.Request, token: str | None) -> bool:
    """Whether the request may see a protected route (always, without a token)."""
    return token is None or matches(presented_token(request), token)
