"""Configuration spelling: camelCase or snake_case keys (not both at once), and a Phalanx
values file holding the controller config under ``controller.config``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from worker.cli import main
from worker.config import ConfigError
from worker.converter import load_config, parse_config

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
BOTH_CUTOFFS = {"cutoff_date": "2077-01-01", "cutoffDate": "2077-01-01"}
SOURCE = {"type": "docker", "registry": "r.example", "repository": "lsst/lab"}

CAMEL = """\
images:
  source:
    type: docker
    registry: registry.example.org
    repository: lsstsqre/sciplat-lab
  recommendedTag: recommended
  numReleases: 1
  numWeeklies: 2
  numDailies: 3
  pin: [r27_0_0]
  aliasTags: [latest_weekly]
  refreshInterval: 5m
  prepullTimeout: 10m
  resolveBudget: 40
  nodeStatusMaxImages: 60
  maxRemovalsUnconfirmed: 20%
dropdownMenu:
  weekly: {age: 8w}
  daily: {number: 7, cutoffDate: "2077-01-01"}
  release: {cutoffVersion: 26.0.0}
  releaseCandidate: {number: 2}
lab:
  nodeSelector: {nublado: lab}
  tolerations:
    - {key: gpu, operator: Exists, effect: NoSchedule, tolerationSeconds: 30}
prepull:
  maxAttempts: 3
  inFlightPerNode: 2
  planInterval: 10s
queue:
  batchSize: 100
  maxRetryDelay: 1m
"""

SNAKE = """\
images:
  source:
    type: docker
    registry: registry.example.org
    repository: lsstsqre/sciplat-lab
  recommended_tag: recommended
  num_releases: 1
  num_weeklies: 2
  num_dailies: 3
  pin: [r27_0_0]
  alias_tags: [latest_weekly]
  refresh_interval: 5m
  prepull_timeout: 10m
  resolve_budget: 40
  node_status_max_images: 60
  max_removals_unconfirmed: 20%
dropdown_menu:
  weekly: {age: 8w}
  daily: {number: 7, cutoff_date: "2077-01-01"}
  release: {cutoff_version: 26.0.0}
  release_candidate: {number: 2}
lab:
  node_selector: {nublado: lab}
  tolerations:
    - {key: gpu, operator: Exists, effect: NoSchedule, toleration_seconds: 30}
prepull:
  max_attempts: 3
  in_flight_per_node: 2
  plan_interval: 10s
queue:
  batch_size: 100
  max_retry_delay: 1m
"""


def _phalanx(config: str) -> str:
    """A Phalanx values file of Nublado with ``config`` under ``controller.config``."""
    nested = textwrap.indent(config, "    ")
    return f"controller:\n  image: {{tag: 8.0.0}}\n  config:\n{nested}hub:\n  timeout: 60\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    texts = {
        "camel": CAMEL,
        "snake": SNAKE,
        "phalanx-camel": _phalanx(CAMEL),
        "phalanx-snake": _phalanx(SNAKE),
    }
    paths = {}
    for name, text in texts.items():
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(text)
    return paths


def test_every_spelling_gives_the_same_configuration(files: dict[str, Path]) -> None:
    configs = {name: load_config(path) for name, path in files.items()}
    camel = configs["camel"]
    assert camel.images.num_dailies == 3
    assert camel.images.resolve_budget == 40
    assert camel.dropdown_menu.release_candidate.number == 2
    assert camel.lab.tolerations[0].toleration_seconds == 30
    assert camel.prepull.in_flight_per_node == 2
    assert camel.queue.batch_size == 100
    assert all(config == camel for config in configs.values()), configs


def test_evaluate_prints_the_same_for_every_spelling(files: dict[str, Path]) -> None:
    outputs = set()
    for path in files.values():
        result = CliRunner().invoke(main, [
            "evaluate", "--config", str(path), "--tags", str(SAMPLES / "tags.json"),
            "--nodes", str(SAMPLES / "nodes.json"), "--now", "2077-11-01T00:00:00Z",
            "--output", "menu",
        ])  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs.add(result.stdout)
    assert len(outputs) == 1
    assert "Recommended" in outputs.pop()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"images": {"source": SOURCE, "num_weeklies": 2, "numWeeklies": 3}},
            r"'num_weeklies' and 'numWeeklies' are the same key: give only one of them"
            r" @ \$\.images$",
        ),
        (
            {"images": {"source": SOURCE}, "dropdownMenu": {}, "dropdown_menu": {}},
            r"'dropdown_menu' and 'dropdownMenu' are the same key",
        ),
        (
            {"images": {"source": SOURCE}, "lab": {"node_selector": {}, "nodeSelector": {}}},
            r"lab: 'node_selector' and 'nodeSelector' are the same key",
        ),
        (
            {"images": {"source": SOURCE}, "dropdownMenu": {"weekly": BOTH_CUTOFFS}},
            r"'cutoff_date' and 'cutoffDate'.* @ \$\.dropdownMenu\.weekly$",
        ),
        (
            {"images": {"source": SOURCE}, "prepull": {"max_attempts": 1, "maxAttempts": 2}},
            r"'max_attempts' and 'maxAttempts'.* @ \$\.prepull$",
        ),
    ],
)
def test_a_key_in_both_spellings_is_an_error_naming_it(document: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(document)


def test_a_values_file_without_the_controller_config_says_where_to_point() -> None:
    values = {"controller": {"image": {"tag": "8.0.0"}}, "hub": {"timeout": 60}}
    with pytest.raises(ConfigError, match=r"point --config at .*controller\.config"):
        parse_config(values, source="values.yaml")
    with pytest.raises(ConfigError, match=r"missing required section 'images'.*controller\.config"):
        parse_config({"hub": {}}, source="values.yaml")


def test_a_values_file_names_where_a_bad_key_is() -> None:
    values = {"controller": {"config": {"images": {"source": SOURCE, "num_dailies": "3"}}}}
    with pytest.raises(ConfigError, match=r"values\.yaml \(controller\.config\).*numDailies"):
        parse_config(values, source="values.yaml")
