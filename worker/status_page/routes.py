"""The status page's routes: ``/`` (the overview), ``/images/{name}``, ``/nodes/{node}``,
and the sign-in form when a token protects them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from worker.domain.errors import ImageLedgerError
from worker.factory import Console
from worker.status_page.token import COOKIE, authorized, matches

__all__ = ["add_status_page"]

_CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)
_TOKEN: web.AppKey[str | None] = web.AppKey("status_token", str)
MARKS = {"present": "✔", "pulling": "⟳", "waiting": "…", "failed": "✖", "parked": "‖"}
REFRESH_SECONDS = {"overview.html": 5, "image.html": 15, "node.html": 15}


def _when(value: datetime | None) -> str:
    """A time as the pages show it (UTC, which the header says once)."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short(digest: str | None) -> str:
    if not digest:
        return ""
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}"


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    context.setdefault("refresh", REFRESH_SECONDS.get(template))
    response = aiohttp_jinja2.render_template(template, request, {"marks": MARKS, **context})
    response.set_status(status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _signed_in(request: web.Request) -> web.Response | None:
    """None when the request may see the page, else the sign-in page (401)."""
    if authorized(request, request.app[_TOKEN]):
        return None
    response = _page(request, "signin.html", 401, target=request.path_qs, refresh=None)
    response.headers["WWW-Authenticate"] = 'Bearer realm="imageledger"'
    return response


def _failed(request: web.Request, exc: ImageLedgerError) -> web.Response:
    status = exc.http_status if exc.http_status != 400 else 404
    return _page(request, "error.html", status, message=str(exc), refresh=None)


async def overview(request: web.Request) -> web.Response:
    """``GET /``: the prepull matrix and everything around it."""
    prefix = request.app[_CONSOLE].prefix
    return await _view(request, "overview.html", Console.overview, "o", prefix=prefix)


async def image(request: web.Request) -> web.Response:
    """``GET /images/{name}``: history and explanations of one image."""
    name = request.match_info["name"]
    return await _view(request, "image.html", lambda console: console.image(name))


async def node(request: web.Request) -> web.Response:
    """``GET /nodes/{node}``: images, history and explanations of one node."""
    name = request.match_info["node"]
    return await _view(request, "node.html", lambda console: console.node(name))


async def _view(
    request: web.Request,
    template: str,
    fetch: Callable[[Console], Awaitable[Any]],
    key: str = "page",
    **context: Any,
) -> web.Response:
    """A signed-in page showing what ``fetch`` asks the console; its error page if it fails."""
    if (refused := _signed_in(request)) is not None:
        return refused
    try:
        answer = await fetch(request.app[_CONSOLE])
    except ImageLedgerError as exc:
        return _failed(request, exc)
    return _page(request, template, **{key: answer}, **context)


async def sign_in(request: web.Request) -> web.Response:
    """``POST /signin``: the token from the form becomes a cookie; back to the page."""
    form = await request.post()
    token, given = request.app[_TOKEN], form.get("token")
    target = str(form.get("next") or "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    if token is not None and not matches(given if isinstance(given, str) else None, token):
        return _page(request, "signin.html", 401, target=target, wrong=True, refresh=None)
    response = web.Response(status=303, headers={"Location": target})
    if token is not None:
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
    return response


def add_status_page(app: web.Application, console: Console, token: str | None) -> None:
    """Serve the status page on ``app``: its routes and templates (package data). With a
    ``token`` (the worker's ``IMAGELEDGER_HTTP_TOKEN``, read by the factory) the pages need it."""
    app[_CONSOLE] = console
    app[_TOKEN] = token
    loader = jinja2.PackageLoader("worker.status_page", "templates")
    env = aiohttp_jinja2.setup(app, loader=loader, autoescape=jinja2.select_autoescape())
    env.filters["when"] = _when
    env.filters["short"] = _short
    app.router.add_get("/", overview)
    app.router.add_get("/images/{name:.+}", image)
    app.router.add_get("/nodes/{node}", node)
    app.router.add_post("/signin", sign_in)
