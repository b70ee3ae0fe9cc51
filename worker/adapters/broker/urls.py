"""AMQP URL lists: one URL, or several comma-separated ones (the nodes of a RabbitMQ cluster)."""

from __future__ import annotations

import re

from yarl import URL

from worker.domain.errors import ImageLedgerError

__all__ = ["AmqpUrlError", "safe_amqp_url", "split_amqp_urls"]

_NEXT_URL = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")
"""A comma that starts another URL; any other comma (in a password, say) belongs to its URL."""


class AmqpUrlError(ImageLedgerError):
    """The AMQP URL setting names no URL at all."""


def split_amqp_urls(value: str) -> tuple[str, ...]:
    """The URLs of ``amqp://a:5672/,amqp://b:5672/``, in the order given.

    A single URL comes back unchanged. Only a comma followed by ``scheme://`` separates two
    URLs, so a comma inside a password or a query stays where it is; blanks around the
    URLs and empty entries (a trailing comma) are dropped.

    Raises
    ------
    AmqpUrlError
        No URL is left (an empty or blank setting).
    """
    parts = (part.strip().strip(",").strip() for part in _NEXT_URL.split(value))
    urls = tuple(part for part in parts if part)
    if not urls:
        raise AmqpUrlError(f"no AMQP URL in {value!r}")
    return urls


def _masked(url: str) -> str:
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else str(parsed)


def safe_amqp_url(url: str) -> str:
    """The URL (or comma-separated URLs) without passwords, for logs and messages."""
    try:
        urls = split_amqp_urls(url)
    except AmqpUrlError:
        return url
    return ",".join(_masked(u) for u in urls)
