"""``imageledger evaluate``: the offline dry-run, its outputs and its errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.cli import ENTRY
from tests.support.conformance import DATA, read_json, without_nulls
from worker.cli import main

CONTROLLER = DATA / "controller"
REGISTRY = DATA / "registry"
REPO = Path(__file__).resolve().parents[3]


def evaluate(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["evaluate", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_spawner_images_output() -> None:
    code, out, _ = evaluate(
        "--config", CONTROLLER / "config-cycle.yaml",
        "--tags", REGISTRY / "docker-cycle.json",
        "--nodes", CONTROLLER / "nodes" / "cycle.json",
        "--digests", "prepull-set", "--output", "spawner-images",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out) == without_nulls(read_json("controller/images/cycle.json"))


def test_menu_and_status_outputs() -> None:
    code, out, _ = evaluate(
        "--config", CONTROLLER / "config-gar-cycle.yaml",
        "--tags", REGISTRY / "gar-cycle.json",
        "--nodes", CONTROLLER / "nodes" / "gar-cycle.json",
        "--output", "menu",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out) == read_json("controller/menu/gar-cycle.json")
    code, out, _ = evaluate(
        "--config", CONTROLLER / "config-prepuller.yaml",
        "--tags", REGISTRY / "docker.json",
        "--nodes", CONTROLLER / "nodes" / "prepuller.json",
        "--digests", "prepull-set", "--output", "prepuller-status",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out) == read_json("controller/prepuller/status.json")


def test_tags_output_lists_every_tag_in_display_order() -> None:
    code, out, _ = evaluate(
        "--config", CONTROLLER / "config-standard.yaml",
        "--tags", REGISTRY / "docker.json", "--output", "tags",
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out)
    assert [r["tag"] for r in rows] == [
        "recommended",
        "latest_weekly",
        "latest_daily",
        "w_2077_44-amd64",
        "w_2077_43",
        "d_2077_10_23",
    ]
    weekly = rows[4]
    assert weekly["type"] == "Weekly"
    assert weekly["version"] == "2077.43.0"
    assert weekly["date"] == "2077-10-28"
    assert rows[1]["display_name"] == "Latest Weekly (Weekly 2077_43)"
    assert rows[1]["alias_target"] == "w_2077_43"
    assert set(rows[0]) >= {
        "tag",
        "type",
        "display_name",
        "version",
        "cycle",
        "cycle_build",
        "build",
        "extra",
        "architecture",
        "date",
    }


def test_now_drives_age_filters(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "images:\n  source: {type: docker, registry: r.example, repository: lab}\n"
        "dropdownMenu:\n  weekly: {age: 2w}\n"
    )
    tags = tmp_path / "tags.json"
    tags.write_text(json.dumps({"w_2025_07": "sha256:a", "w_2025_05": "sha256:b"}))
    code, out, _ = evaluate("--config", config, "--tags", tags, "--now", "2025-02-19T17:00:00Z")
    assert code == 0
    assert [e["name"] for e in json.loads(out)["dropdown"]] == ["Weekly 2025_07"]
    code, out, _ = evaluate("--config", config, "--tags", tags, "--now", "2025-02-06T00:00:00Z")
    assert [e["name"] for e in json.loads(out)["dropdown"]] == ["Weekly 2025_07", "Weekly 2025_05"]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing-config", "config.yaml: cannot read"),
        ("bad-yaml", "config.yaml: not valid YAML"),
        ("bad-key", "extra fields found (numWeekly) @ $.images"),
        ("bad-json", "tags file"),
        ("bad-tags", "expected a string"),
        ("bad-nodes", "nodes.json"),
        ("bad-now", "--now 'yesterday': not an ISO 8601 timestamp"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, setup: str, expected: str) -> None:
    config = tmp_path / "config.yaml"
    tags = tmp_path / "tags.json"
    nodes = tmp_path / "nodes.json"
    config.write_text("images:\n  source: {type: docker, registry: r.example, repository: lab}\n")
    tags.write_text('{"w_2025_07": "sha256:a"}')
    nodes.write_text('{"node1": {"images": []}}')
    now = "2025-01-01T00:00:00Z"
    if setup == "missing-config":
        config.unlink()
    elif setup == "bad-yaml":
        config.write_text("images: [\n")
    elif setup == "bad-key":
        config.write_text("images:\n  source: {type: docker, repository: lab}\n  numWeekly: 2\n")
    elif setup == "bad-json":
        tags.write_text("{not json")
    elif setup == "bad-tags":
        tags.write_text('{"w_2025_07": 5}')
    elif setup == "bad-nodes":
        nodes.write_text('{"node1": {"images": [{"names": "x"}]}}')
    elif setup == "bad-now":
        now = "yesterday"
    code, out, err = evaluate("--config", config, "--tags", tags, "--nodes", nodes, "--now", now)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("imageledger: error: ")
    assert expected in lines[0]


def test_console_script_prints_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [*ENTRY, "evaluate",
         "--config", str(tmp_path / "none.yaml"), "--tags", str(tmp_path / "none.json")],
        capture_output=True, text=True, check=False, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("imageledger: error: ")
