"""The dashboard's panels and Grafana's PostgreSQL macros, expanded as Grafana expands them.

Grafana interpolates dashboard variables (``$__interval``) first, then the data source's
macros (``$__timeFilter(col)`` …, each ``$name(args)`` with no ``)`` inside), as its
PostgreSQL data source does; this module does the same so that tests run the SQL Grafana
would send. An unknown macro raises, so nothing unexpanded reaches the database.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attrs import frozen

__all__ = ["DASHBOARD", "Panel", "TimeRange", "expand", "panels"]

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/imageledger.json"
_MACRO = re.compile(r"\$(\w+)\(([^)]*)\)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


@frozen
class TimeRange:
    """The dashboard's time range and the interval Grafana derives from it."""

    start: datetime
    end: datetime
    interval: str = "1m"


@frozen
class Panel:
    """One SQL panel: its title, result format and raw SQL."""

    title: str
    output: str
    sql: str


def panels(document: dict[str, Any] | None = None) -> list[Panel]:
    """Every PostgreSQL target of the dashboard file, in panel order."""
    board = document or json.loads(DASHBOARD.read_text())
    found = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            if "rawSql" in target:
                found.append(Panel(panel["title"], target["format"], target["rawSql"]))
    return found


def _stamp(moment: datetime) -> str:
    """RFC 3339 in UTC, as Go formats ``time.RFC3339Nano`` (no trailing zeros)."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text.rstrip("0").rstrip(".") + "Z"


def _seconds(interval: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", interval.strip().strip("'"))
    if match is None:
        raise ValueError(f"error parsing interval {interval}")
    return float(match[1]) * _UNITS[match[2]]


def _number(value: float) -> str:
    """A float as Go's ``%v`` prints it (300, not 300.0)."""
    return str(int(value)) if value == int(value) else repr(value)


def _macro(name: str, args: list[str], span: TimeRange) -> str:
    start, end = _stamp(span.start), _stamp(span.end)
    if name == "__time":
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{start}' AND '{end}'"
    if name == "__timeFrom":
        return f"'{start}'"
    if name == "__timeTo":
        return f"'{end}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        step = _number(_seconds(args[1]))
        group = f"floor(extract(epoch from {args[0]})/{step})*{step}"
        return group + (' AS "time"' if name == "__timeGroupAlias" else "")
    if name == "__unixEpochFilter":
        low, high = int(span.start.timestamp()), int(span.end.timestamp())
        return f"{args[0]} >= {low} AND {args[0]} <= {high}"
    raise ValueError(f"unknown macro {name!r}")


def expand(sql: str, span: TimeRange) -> str:
    """``sql`` with Grafana's variables and PostgreSQL macros expanded for ``span``."""
    milliseconds = _number(_seconds(span.interval) * 1000)
    text = sql.replace("$__interval_ms", milliseconds).replace("$__interval", span.interval)

    def replace(match: re.Match[str]) -> str:
        args = [a.strip() for a in match[2].split(",")]
        name = match[1]
        if name == "__timeGroup" and text[match.end() : match.end() + 1] == ",":
            name = "__timeGroupAlias"  # Grafana's compatibility with dashboards before 5.3
        return _macro(name, args, span)

    expanded = _MACRO.sub(replace, text)
    if "$" in expanded.replace("$$", ""):
        raise ValueError(f"unexpanded variable left in: {expanded}")
    return expanded
