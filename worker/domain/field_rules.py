"""The rules a value from outside must meet: Kubernetes names and labels, OCI digests,
sizes, bounded text and plausible times. Each check returns the problem, or None."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from attrs import frozen

__all__ = [
    "EARLIEST_TIME",
    "FOLD_SKEW",
    "MAX_IMAGE_NAME",
    "MAX_REASON",
    "MAX_SIZE",
    "TAINT_EFFECTS",
    "digest_problem",
    "dns_subdomain_problem",
    "label_key_problem",
    "label_value_problem",
    "shown",
    "size_problem",
    "string_problem",
    "taint_effect_problem",
    "text_problem",
    "time_problem",
]

EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
"""No message time before this is plausible (a zeroed or garbled clock)."""
FOLD_SKEW = timedelta(minutes=5)
"""How far ahead of the worker's clock a message time may be by default
(``queue.maxClockSkew``), and how far ahead of its recording a stored event ever counts in
the fold: an event counts as observed at ``min(occurred_at, recorded_at + FOLD_SKEW)``
(``worker.domain.ledger.as_folded``), whatever the configuration admitted when it arrived."""
MAX_SIZE = 2**63
"""Sizes are below this (PostgreSQL's bigint)."""
MAX_REASON = 2048
"""Characters of a failure reason or a refresh reason at most."""
MAX_IMAGE_NAME = 1024
"""Characters of one name of a kubelet image at most."""
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DIGESTS = {"sha256": re.compile(r"[0-9a-f]{64}"), "sha512": re.compile(r"[0-9a-f]{128}")}
_BAD_CHARACTERS = re.compile(r"[\x00\ud800-\udfff]")


@frozen
class _NameRule:
    """At most ``limit`` characters matching ``pattern``: a ``kind`` of name made of
    ``chars``, starting and ending with a letter or digit."""

    limit: int
    pattern: re.Pattern[str]
    kind: str
    chars: str

    def problem(
        self, value: str, subject: str = "", shown_as: str | None = None, *, empty: bool = False
    ) -> str | None:
        """Why ``value`` breaks the rule, or None (an empty value is allowed when
        ``empty``). ``subject`` leads the messages (``key name``); ``shown_as`` is how a
        mismatch shows the value (by default, itself)."""
        lead = f"{subject} " if subject else ""
        if not value and not empty:
            return f"{lead}must not be empty"
        if len(value) > self.limit:
            return f"{lead}must be at most {self.limit} characters, got {len(value)}"
        if value and not self.pattern.fullmatch(value):
            named = shown_as if shown_as is not None else shown(value)
            edges = "starting and ending with a letter or digit"
            return f"{named} is not a {self.kind} ({self.chars}, {edges})"
        return None


_QUALIFIED = "letters, digits, '-', '_' and '.'"
_OBJECT_NAME = _NameRule(
    253, _DNS_SUBDOMAIN, "DNS-1123 subdomain", "lowercase letters, digits, '-' and '.'"
)
_KEY_NAME = _NameRule(63, _QUALIFIED_NAME, "qualified name", _QUALIFIED)
_LABEL_VALUE = _NameRule(63, _QUALIFIED_NAME, "valid label value", _QUALIFIED)


def dns_subdomain_problem(value: str) -> str | None:
    """A Kubernetes object name (nodes, pods): a DNS-1123 subdomain of at most 253
    characters, lowercase letters, digits, '-' and '.'."""
    return _OBJECT_NAME.problem(value)


def label_key_problem(key: str) -> str | None:
    """A Kubernetes label (or taint) key: ``[prefix/]name``, the prefix a DNS-1123
    subdomain, the name at most 63 characters of letters, digits, '-', '_' and '.'."""
    prefix, slash, name = key.rpartition("/")
    if slash and (problem := dns_subdomain_problem(prefix)) is not None:
        return f"key prefix {problem}"
    return _KEY_NAME.problem(name, "key name", f"key {shown(key)}")


def label_value_problem(value: str) -> str | None:
    """A Kubernetes label (or taint) value: empty, or at most 63 characters of letters,
    digits, '-', '_' and '.', starting and ending with a letter or digit."""
    return _LABEL_VALUE.problem(value, "value", f"value {shown(value)}", empty=True)


def taint_effect_problem(effect: str) -> str | None:
    """One of Kubernetes' taint effects."""
    if effect not in TAINT_EFFECTS:
        return f"effect {shown(effect)} is not one of {', '.join(TAINT_EFFECTS)}"
    return None


def digest_problem(digest: str) -> str | None:
    """An OCI digest of a registered algorithm: ``sha256:`` and 64 lowercase hex digits,
    or ``sha512:`` and 128."""
    algorithm, _, encoded = digest.partition(":")
    pattern = _DIGESTS.get(algorithm)
    if pattern is None or not pattern.fullmatch(encoded):
        return (
            f"digest {shown(digest)} is not sha256: and 64 lowercase hex digits"
            " (or sha512: and 128)"
        )
    return None


def size_problem(size: int) -> str | None:
    """A size in bytes: 0 <= size < 2^63."""
    if not 0 <= size < MAX_SIZE:
        return f"size {size} is out of range (0 to 2^63 - 1)"
    return None


def string_problem(value: str) -> str | None:
    """Text PostgreSQL can store: no NUL character and no unpaired surrogate."""
    bad = _BAD_CHARACTERS.search(value)
    if bad is None:
        return None
    what = "a NUL character" if bad.group() == "\x00" else "an unpaired surrogate"
    return f"contains {what} at offset {bad.start()}"


def text_problem(value: str, limit: int) -> str | None:
    """Free text (a reason) of at most ``limit`` characters."""
    if len(value) > limit:
        return f"must be at most {limit} characters, got {len(value)}"
    return None


def time_problem(
    at: datetime, now: datetime | None = None, skew: timedelta | None = None
) -> str | None:
    """A message time: not before 2000-01-01, and (given the clock) not more than ``skew``
    ahead of ``now``."""
    if at < EARLIEST_TIME:
        return f"time {at.isoformat()} is before {EARLIEST_TIME.date().isoformat()}"
    if now is not None and skew is not None and at > now + skew:
        return (
            f"time {at.isoformat()} is more than {_duration(skew)} ahead of the worker's clock"
            f" ({now.isoformat(timespec='seconds')})"
        )
    return None


def shown(value: str, limit: int = 80) -> str:
    """A value quoted for a reason or a path, cut to ``limit`` characters."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60}m"
    return f"{delta.total_seconds():g}s"
