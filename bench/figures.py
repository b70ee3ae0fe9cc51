"""Shared measuring helpers of the benchmarks: spread over runs, process CPU and memory."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["cpu_seconds", "machine", "peak_rss_mb", "spread"]


def spread(values: Sequence[float], digits: int = 3) -> dict[str, float]:
    """Minimum, median and maximum of the figures of several runs."""
    if not values:
        raise ValueError("no runs to summarize")
    return {
        "min": round(min(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
    }


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process so far, all its threads (``/proc/<pid>/stat``);
    ``None``: this process (``os.times``)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident set (``VmHWM``) of a running process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def machine() -> dict[str, Any]:
    """What the figures were measured on, and when."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "recorded_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
    }
