"""Pure parsers for registry wire formats: Link, Retry-After, names, digests, media types."""

from __future__ import annotations

import json
import re
from collections.abc import Container, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from attrs import frozen
from yarl import URL

__all__ = [
    "MANIFEST_ACCEPT",
    "MANIFEST_MEDIA_TYPES",
    "RATE_LIMIT_HEADERS",
    "LinkValue",
    "check_tag_page",
    "is_valid_digest",
    "is_valid_repository",
    "is_valid_tag",
    "next_link",
    "parse_link_header",
    "parse_retry_after",
    "parse_tag_page",
    "read_quoted_string",
    "read_token",
    "same_origin",
    "skip",
]

MANIFEST_MEDIA_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
"""Manifest media types we accept, in the order sent (the reference's order)."""

MANIFEST_ACCEPT = ", ".join((*MANIFEST_MEDIA_TYPES, "application/json;q=0.5"))
"""The ``Accept`` header for manifest requests: without the OCI types, OCI manifests 404."""

RATE_LIMIT_HEADERS = (
    "ratelimit",
    "ratelimit-limit",
    "ratelimit-policy",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "docker-ratelimit-source",
)
"""Response headers (lower case) recorded as the last seen rate-limit state."""

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REPOSITORY_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"{_REPOSITORY_COMPONENT}(?:/{_REPOSITORY_COMPONENT})*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_KNOWN_DIGEST_RE = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}


def is_valid_repository(name: str) -> bool:
    """Whether ``name`` is a repository name by the OCI distribution grammar."""
    return len(name) <= 255 and _REPOSITORY_RE.fullmatch(name) is not None


def is_valid_tag(tag: str) -> bool:
    """Whether ``tag`` is a tag by the OCI distribution grammar."""
    return _TAG_RE.fullmatch(tag) is not None


def is_valid_digest(digest: str) -> bool:
    """Whether ``digest`` is ``algorithm:hex`` (strictly checked for sha256 and sha512)."""
    if _DIGEST_RE.fullmatch(digest) is None:
        return False
    algorithm, _, encoded = digest.partition(":")
    known = _KNOWN_DIGEST_RE.get(algorithm)
    return known is None or known.fullmatch(encoded) is not None


def read_token(text: str, pos: int) -> tuple[str, int]:
    """Read an RFC 9110 token at ``pos``; return it (maybe empty) and the next position."""
    match = _TOKEN_RE.match(text, pos)
    if match is None:
        return "", pos
    return match.group(0), match.end()


def read_quoted_string(text: str, pos: int) -> tuple[str, int]:
    """Read an RFC 9110 quoted-string starting at the opening quote at ``pos``.

    Backslash escapes are undone. Raises `ValueError` if the string is not terminated.
    """
    if pos >= len(text) or text[pos] != '"':
        raise ValueError("expected a quoted string")
    chars: list[str] = []
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            chars.append(text[pos + 1])
            pos += 2
        elif char == '"':
            return "".join(chars), pos + 1
        else:
            chars.append(char)
            pos += 1
    raise ValueError("unterminated quoted string")


def skip(text: str, pos: int, chars: str = " \t") -> int:
    """Advance ``pos`` past any of ``chars``."""
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


@frozen
class LinkValue:
    """One link of an RFC 8288 ``Link`` header: its target and its parameters."""

    target: str
    params: dict[str, str]

    @property
    def relations(self) -> tuple[str, ...]:
        """The link's relation types, lower-cased (``rel`` holds a space-separated list)."""
        return tuple(rel.lower() for rel in self.params.get("rel", "").split())


def parse_link_header(header: str) -> list[LinkValue]:
    """Parse an RFC 8288 ``Link`` header value into its links.

    Targets may contain commas and parameter values may be quoted strings with commas,
    semicolons and escapes. Parameter names are lower-cased; the first occurrence wins.
    Raises `ValueError` on malformed input.
    """
    links: list[LinkValue] = []
    pos = skip(header, 0, " \t,")
    while pos < len(header):
        if header[pos] != "<":
            raise ValueError("a link must start with '<'")
        end = header.find(">", pos)
        if end < 0:
            raise ValueError("unterminated link target")
        target = header[pos + 1 : end].strip()
        params, pos = _read_link_params(header, end + 1)
        links.append(LinkValue(target=target, params=params))
        pos = skip(header, pos, " \t,")
    return links


def _read_link_params(header: str, pos: int) -> tuple[dict[str, str], int]:
    """Read ``; name[=value]`` parameters up to the next comma or the end."""
    params: dict[str, str] = {}
    while True:
        pos = skip(header, pos)
        if pos >= len(header) or header[pos] == ",":
            return params, pos
        if header[pos] != ";":
            raise ValueError("expected ';' between link parameters")
        name, pos = read_token(header, skip(header, pos + 1))
        if not name:
            raise ValueError("expected a link parameter name")
        value = ""
        pos = skip(header, pos)
        if pos < len(header) and header[pos] == "=":
            pos = skip(header, pos + 1)
            if pos < len(header) and header[pos] == '"':
                value, pos = read_quoted_string(header, pos)
            else:
                value, pos = read_token(header, pos)
        params.setdefault(name.lower(), value)


def next_link(headers: Iterable[str]) -> str | None:
    """The target of the first ``rel="next"`` link among ``Link`` header values, if any."""
    for header in headers:
        for link in parse_link_header(header):
            if "next" in link.relations:
                return link.target
    return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date).

    Returns None when absent or unparseable; a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def parse_tag_page(body: bytes) -> list[str]:
    """The ``tags`` of one ``tags/list`` page: a list of valid tags, each once.

    Raises `ValueError` for anything else, ``"tags": null`` and a missing ``tags``
    included: taken as an empty listing, such an answer would remove every tag.
    """
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    tags = data.get("tags")
    if not isinstance(tags, list):
        raise ValueError(f"'tags' is {'null' if tags is None else type(tags).__name__}, not a list")
    bad = next((tag for tag in tags if not isinstance(tag, str) or not is_valid_tag(tag)), None)
    if bad is not None:
        raise ValueError(f"{_shorten(bad)} is not a valid tag")
    if len(set(tags)) != len(tags):
        raise ValueError("a tag is listed twice")
    return tags


def check_tag_page(listed: list[str], earlier: Container[str], *, first: bool) -> None:
    """A page must add tags: an empty page after the first, or a tag an earlier page
    already gave, means the pagination cannot be trusted (ValueError)."""
    if not listed and not first:
        raise ValueError("an empty page follows the first")
    repeated = next((tag for tag in listed if tag in earlier), None)
    if repeated is not None:
        raise ValueError(f"tag {repeated!r} is listed again on a later page")


def _shorten(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def same_origin(first: URL, second: URL) -> bool:
    """Whether two URLs share scheme, host and port (default ports made explicit)."""
    return (first.scheme, (first.host or "").lower(), first.port) == (
        second.scheme,
        (second.host or "").lower(),
        second.port,
    )
