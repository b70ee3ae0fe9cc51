"""Registry HTTP transport pieces: the answer read, its size bound, TLS trust and headers."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
from attrs import frozen
from multidict import CIMultiDictProxy
from yarl import URL

from .errors import RegistryError, RegistryProtocolError, error_for_status

__all__ = ["Response", "answer_error", "read_body", "request_headers", "ssl_context"]


@frozen
class Response:
    """One registry answer, read in full."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    url: URL


async def read_body(resp: aiohttp.ClientResponse, method: str, url: URL, limit: int) -> bytes:
    """The body, refused beyond ``limit`` bytes (checked before and while reading)."""
    body = bytearray()
    if resp.content_length is None or resp.content_length <= limit:
        async for chunk in resp.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > limit:
                break
    if len(body) > limit or (resp.content_length or 0) > limit:
        raise RegistryProtocolError(
            f"answer larger than {limit} bytes", method=method, url=url, status=resp.status
        )
    return bytes(body)


def ssl_context(ca_bundle: Path | str | None) -> ssl.SSLContext | bool:
    """System trust, plus the CA bundle if one is configured."""
    if ca_bundle is None:
        return True
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise RegistryError(f"cannot load CA bundle {ca_bundle}: {exc}") from exc
    return context


def answer_error(
    method: str, url: URL, response: Response, not_found: type[RegistryError]
) -> RegistryError:
    """The error an unwanted answer stands for."""
    return error_for_status(
        method, url, response.status, response.body, response.headers, not_found
    )


def request_headers(accept: str, authorization: str | None) -> dict[str, str]:
    """The headers of a registry request."""
    headers = {"Accept": accept}
    if authorization is not None:
        headers["Authorization"] = authorization
    return headers
