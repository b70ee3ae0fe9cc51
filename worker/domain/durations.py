"""Human durations as the reference's configuration writes them: ``5m``, ``2w``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["format_duration", "parse_duration"]

_UNITS = {
    "w": 604800, "week": 604800, "weeks": 604800,
    "d": 86400, "day": 86400, "days": 86400,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "ms": 0.001, "msec": 0.001, "msecs": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
}  # fmt: skip
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """Parse ``1w2d``, ``5m``, ``1h 30m``, ``90s``, ``300`` (seconds) or ``HH:MM:SS``.

    Raises ValueError with the offending text otherwise, or when it is longer than a
    timedelta can hold (about 2.7 million years).
    """
    try:
        return _parse_duration(text)
    except OverflowError as exc:
        raise ValueError(f"duration {text!r} is too long") from exc


def _parse_duration(text: str) -> timedelta:
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty duration")
    if re.fullmatch(r"\d+(?:\.\d+)?", stripped):
        return timedelta(seconds=float(stripped))
    clock = re.fullmatch(r"(\d+):([0-5]\d):([0-5]\d)", stripped)
    if clock:
        hours, minutes, seconds = (int(g) for g in clock.groups())
        return timedelta(hours=hours, minutes=minutes, seconds=seconds)
    total = 0.0
    position = 0
    for match in _PART.finditer(stripped):
        if match.start() != position:
            break
        unit = match.group(2).lower()
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {match.group(2)!r} in duration {text!r}")
        total += float(match.group(1)) * _UNITS[unit]
        position = match.end()
    if position != len(stripped) or position == 0:
        raise ValueError(f"cannot parse duration {text!r} (expected e.g. '5m', '2w', '1h30m')")
    return timedelta(seconds=total)


def format_duration(delta: timedelta) -> str:
    """The shortest ``1w2d3h4m5s`` form of a whole-second duration."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
