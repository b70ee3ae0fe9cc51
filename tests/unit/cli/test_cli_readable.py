"""The CLI reads well: its version, tables drawn on a terminal and plain on a pipe, a bare
tag given to ``resolve`` answered with the option to use, ``evaluate --output table``."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from click.testing import CliRunner

from tests.support.cli import ENTRY
from worker.cli import main
from worker.cli.tables import render_table

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
ROWS = [
    {"node": "node-a", "eligible": True, "missing": ["w_2077_44", "d_2077_10_23 (parked)"],
     "digest": "sha256:" + "a" * 64, "seen": datetime(2077, 11, 1, 12, 0, 0, 123, tzinfo=UTC),
     "reason": None},
    {"node": "node-c", "eligible": False, "missing": [], "digest": None, "seen": None,
     "reason": "Node is tainted (NoSchedule, gpu = true)"},
]  # fmt: skip
COLUMNS = {"node": "node", "eligible": "eligible", "missing": "missing images",
           "digest": "digest", "seen": "seen", "reason": "reason"}  # fmt: skip


def test_version() -> None:
    done = subprocess.run([*ENTRY, "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert done.stdout.strip() == f"imageledger {metadata.version('imageledger')}"


def test_a_table_on_a_pipe_is_plain_aligned_text() -> None:
    header, first, second = render_table(ROWS, COLUMNS).splitlines()
    starts = {name: header.index(name) for name in COLUMNS.values()}
    assert header.split("  ")[0] == "node"
    assert header == header.rstrip()
    expected = {
        "node": ("node-a", "node-c"),
        "eligible": ("yes", "no"),  # not True / False
        "missing images": ("w_2077_44, d_2077_10_23 (parked)", ""),
        "digest": ("sha256:aaaaaaaaaaaa  ", ""),  # short
        "seen": ("2077-11-01T12:00:00+00:00", ""),  # to the second
        "reason": ("", "Node is tainted (NoSchedule, gpu = true)"),
    }
    for name, (a, c) in expected.items():
        assert first[starts[name] :].startswith(a), name
        assert second[starts[name] :].startswith(c), name
    assert second.endswith("gpu = true)")
    assert "None" not in first + second


def test_a_table_on_a_terminal_is_drawn_to_its_width() -> None:
    drawn = render_table(ROWS, COLUMNS, terminal=True, width=80)
    assert "\x1b[1m" in drawn  # bold headers
    assert "─" in drawn  # a rule under them
    assert all(len(line) <= 80 for line in _without_escapes(drawn).splitlines())
    assert "tainted" in _without_escapes(drawn)


def _without_escapes(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_a_command_through_a_pipe_prints_no_box_or_colour() -> None:
    args = ["evaluate", "--config", str(SAMPLES / "config.yaml"), "--tags",
            str(SAMPLES / "tags.json"), "--nodes", str(SAMPLES / "nodes.json"),
            "--now", "2077-11-01T00:00:00Z", "--output", "table"]  # fmt: skip
    done = subprocess.run([*ENTRY, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout
    assert not set("─━│┃┏┡") & set(done.stdout)
    assert done.stdout.splitlines()[0].split() == [
        "tag", "name", "type", "digest", "prepull", "target", "prepulled", "menu", "aliases",
    ]  # fmt: skip


def test_evaluate_table_shows_targets_prepulls_and_menu_sections() -> None:
    args = ["evaluate", "--config", str(SAMPLES / "config.yaml"), "--tags",
            str(SAMPLES / "tags.json"), "--nodes", str(SAMPLES / "nodes.json"),
            "--now", "2077-11-01T00:00:00Z", "--output", "table"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    recommended = rows["recommended"].split()
    assert recommended[:5] == ["recommended", "Recommended", "(Weekly", "2077_42)", "Alias"]
    assert recommended[6:] == ["yes", "yes", "radio,", "dropdown", "w_2077_42"]
    assert rows["w_2077_44"].split()[4:] == [
        "sha256:faf47949ba77", "yes", "no", "dropdown", "latest_weekly",
    ]  # fmt: skip
    assert rows["r25_0_0"].split()[-2:] == ["sha256:0dc4b516a112", "no"]  # not shown at all


def test_resolve_of_a_bare_tag_suggests_the_tag_option() -> None:
    result = CliRunner().invoke(main, ["resolve", "w_2026_48"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "imageledger: error: REFERENCE 'w_2026_48' is a bare tag, not "
        "registry/repository:tag; for a tag of the configured repository run: "
        "imageledger resolve --tag w_2026_48"
    )
    classy = CliRunner().invoke(main, ["resolve", "recommended"])
    assert classy.exit_code == 2
    assert "--tag recommended (or, for the image class, --class recommended)" in classy.stderr
