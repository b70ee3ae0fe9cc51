"""Every benchmark command in docs/benchmarks.md, docs/scale.md and README.md runs as written,
on a tiny workload.

The commands are read out of the documents, so a document that names a script, an option
or a value that no longer works fails here. Each runs from the repository root in a
subprocess with flags appended that shrink its workload (argparse keeps the last value of a
repeated option) and with its output files moved to a temporary folder; it must exit 0 and
write a JSON document with the benchmark's figures.
"""

from __future__ import annotations

import json
import pstats
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from attrs import frozen

from bench.scale_figures import VIEWS

ROOT = Path(__file__).resolve().parents[3]
DOCUMENTS = ("docs/benchmarks.md", "README.md", "docs/scale.md")
SMALL_VERSION = {
    "bench/cluster.py": "tests/integration/adapters/broker/test_rabbit_cluster_failover.py",
}
"""Scripts whose small version is a test of its own (booting a RabbitMQ cluster takes half a
minute): their documented commands are checked for options the script defines, not run."""
_COMMAND = re.compile(r"(?<![\w/.-])python (bench/[\w/]+\.py)([^`\n#]*)")
"""``python bench/<script>.py [args]``, up to a closing backtick, a comment or the line's end."""
PATH_OPTIONS = ("--out", "--profile", "--worker-log", "--log")
"""Options naming a file the run writes: moved to the test's temporary folder."""

TINY = {
    "bench/domain.py": ["--repeats", "1", "--runs", "1"],
    "bench/refresh.py": ["--tags", "20", "--runs", "2"],
    "bench/eventlog.py": ["--events", "3000", "--append-batches", "2"],
    "bench/worker_throughput.py": [
        *("--messages", "600", "--batch-size", "100", "--prefetch", "200"),
        *("--nodes", "20", "--pairs", "1"),
    ],
    "bench/scale.py": [
        *("--tiny", "--nodes", "50", "--tags", "30", "--days", "1", "--day-seconds", "8"),
        *("--speedup", "10", "--pull-seconds", "0.5", "--nominal-seconds", "6"),
        *("--cadence", "30", "--churn", "0.5", "--workers", "3"),
    ],
}
"""Flags that shrink each benchmark's workload (appended, so they win)."""
LOGS = {"bench/refresh.py": "--log", "bench/worker_throughput.py": "--worker-log"}
"""Options naming a log file that no documented command sets: kept out of /tmp too."""
SPREAD = {"min", "median", "max"}


def documented_commands() -> list[tuple[str, list[str]]]:
    """(script, arguments) of every distinct documented command, in document order."""
    seen: dict[str, tuple[str, list[str]]] = {}
    for document in DOCUMENTS:
        for match in _COMMAND.finditer((ROOT / document).read_text()):
            command = f"{match[1]} {match[2].strip()}".strip()
            seen.setdefault(command, (match[1], shlex.split(match[2])))
    return list(seen.values())


DOCUMENTED = documented_commands()
COMMANDS = [(script, arguments) for script, arguments in DOCUMENTED if script not in SMALL_VERSION]


def _id(script: str, arguments: list[str]) -> str:
    return " ".join(["python", script, *arguments])


def _runnable(folder: Path, script: str, arguments: list[str]) -> list[str]:
    """The command with its files in ``folder`` and the tiny workload's flags appended."""
    out: list[str] = []
    for i, argument in enumerate(arguments):
        previous = arguments[i - 1] if i else ""
        out.append(str(folder / Path(argument).name) if previous in PATH_OPTIONS else argument)
    if "--out" not in out:
        out += ["--out", str(folder / "result.json")]
    if script in LOGS and LOGS[script] not in out:
        out += [LOGS[script], str(folder / "run.log")]
    return [sys.executable, script, *out, *TINY.get(script, [])]


@frozen
class Finished:
    """A command that ran: what it was, where its files went, how it ended."""

    command: list[str]
    folder: Path
    returncode: int

    def output(self) -> str:
        return (self.folder / "output.txt").read_text()[-3000:]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Finished]:
    """Every documented command, all started at once (they mostly wait on the services and
    on their children; one after the other they take three times longer), then awaited."""
    started = []
    for i, (script, arguments) in enumerate(COMMANDS):
        folder = tmp_path_factory.mktemp(f"bench{i}")
        command = _runnable(folder, script, arguments)
        with (folder / "output.txt").open("wb") as sink:
            process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
        started.append((_id(script, arguments), command, folder, process))
    try:
        return {
            key: Finished(command, folder, process.wait(timeout=240))
            for key, command, folder, process in started
        }
    finally:
        for *_, process in started:
            if process.poll() is None:
                process.kill()
                process.wait()


def _check_domain(result: dict[str, Any]) -> None:
    assert result["parsing"]["parse_tags_per_second"]["value"] > 0
    assert result["evaluation"]["evaluation_seconds"]["value"] > 0


def _check_refresh(result: dict[str, Any]) -> None:
    assert set(result["cold_vs_ceiling"]) == SPREAD
    assert set(result["warm_vs_cold"]) == SPREAD
    assert [r["order"] for r in result["runs"]] == ["ceiling first", "refresh first"]


def _check_eventlog(result: dict[str, Any]) -> None:
    assert result["append"]["ratio"] > 0
    assert result["append_pod_completions"]["ratio"] > 0
    rebuild = result["rebuild"]
    assert rebuild["events"] == 3000
    assert rebuild["reference"]["rows"] > 0
    assert rebuild["copy_vs_rebuild"] > 0
    assert result["views"]["data"]["events"] == 3000


def _check_worker(result: dict[str, Any]) -> None:
    (size,) = result["by_nodes"]
    assert size["nodes"] == 20
    assert size["state"]["nodes"] == 20
    assert size["state"]["prepull_targets"] == 10
    assert set(size["throughput_ratio"]) == SPREAD
    assert set(size["cpu_per_message_ratio"]) == SPREAD
    (run,) = size["runs"]
    assert run["worker"]["exit_code"] == 0
    assert run["worker"]["timed_messages"] > 0
    assert run["ceiling"]["cpu_us_per_message"] > 0


def _check_scale(result: dict[str, Any]) -> None:
    for phase in ("setup", "1x", "10x"):
        lag = result["lag"][phase]["all"]
        assert lag["with_events"] > 0, (phase, lag)
        assert 0 <= lag["p50_s"] <= lag["p99_s"] <= lag["max_s"], (phase, lag)
    assert result["lag"]["10x"]["completion"]["with_events"] == 49
    (day,) = result["days"]
    rollout = day["rollout"]
    assert rollout["eligible_nodes"] == rollout["nodes_reached"] == 49
    assert rollout["lower_bound_s"] == 0.5
    assert rollout["every_node_s"] >= rollout["lower_bound_s"]
    assert rollout["vs_lower_bound"] == round(rollout["every_node_s"] / 0.5, 3)
    assert rollout["met"] is (rollout["vs_lower_bound"] <= 1.2)
    assert day["events_by_type"]["prepull.succeeded"] == 49
    assert day["events"] == sum(day["events_by_type"].values())
    assert day["ledger_bytes"] > 0
    year = result["year"]
    assert year["events_per_year"] >= day["events"] * 365
    assert year["disk_bytes_per_year"] > 0
    assert year["rebuild_s_per_year_of_log"] > 0
    assert result["rebuild"]["events"] == result["size_at_end"]["events"]
    assert result["rebuild"]["seconds"] > 0
    assert set(result["views"]) == set(VIEWS)
    assert all(view["median_ms"] > 0 for view in result["views"].values())
    assert result["views"]["nodes"]["rows"] == 50
    assert result["workers"]["exit_codes"] == [0, 0, 0]


CHECKS = {
    "bench/domain.py": _check_domain,
    "bench/refresh.py": _check_refresh,
    "bench/eventlog.py": _check_eventlog,
    "bench/worker_throughput.py": _check_worker,
    "bench/scale.py": _check_scale,
}


def test_every_benchmark_script_is_documented_with_a_command() -> None:
    scripts = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "bench").glob("*.py")
        if 'if __name__ == "__main__":' in p.read_text()
    }
    documented = {script for script, _ in DOCUMENTED}
    assert documented == scripts
    assert set(CHECKS) | set(SMALL_VERSION) == scripts


@pytest.mark.parametrize(
    ("script", "arguments"), [c for c in DOCUMENTED if c[0] in SMALL_VERSION], ids=lambda v: str(v)
)
def test_a_command_run_by_its_own_test_names_options_the_script_defines(
    script: str, arguments: list[str]
) -> None:
    source = (ROOT / script).read_text()
    defined = set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", source))
    used = {a for a in arguments if a.startswith("--")}
    assert used <= defined, (script, used - defined)
    assert (ROOT / SMALL_VERSION[script]).is_file()


@pytest.mark.parametrize("key", [_id(s, a) for s, a in COMMANDS])
def test_documented_command_runs_and_writes_its_figures(
    finished: dict[str, Finished], key: str
) -> None:
    run = finished[key]
    assert run.returncode == 0, run.output()
    out = Path(run.command[run.command.index("--out") + 1])
    script = run.command[1]
    CHECKS[script](json.loads(out.read_text()))
    if "--profile" in run.command:
        profiles = list(run.folder.glob("*.prof"))
        assert profiles, "no profile written"
        assert pstats.Stats(str(profiles[0])).total_calls > 0  # type: ignore[attr-defined]
