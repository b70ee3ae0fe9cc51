"""The alert rules: promtool checks and unit tests, runbooks, the PrometheusRule wrapper."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from worker.cli import main

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy/prometheus/imageledger-rules.yaml"
CONFIG = ROOT / "deploy/prometheus/prometheus.yaml"
OPERATOR_RULE = ROOT / "deploy/kubernetes/base/prometheusrule.yaml"
RULE_TESTS = ROOT / "tests/data/prometheus/imageledger-rules.test.yaml"
ALERTS_DOC = ROOT / "docs/alerts.md"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool (Debian package ``prometheus``); fails clearly when it is missing."""
    path = shutil.which("promtool")
    if path is None:
        raise RuntimeError("promtool not found: apt-get install -y prometheus")
    return subprocess.run(
        [path, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def alerts() -> list[dict[str, Any]]:
    """Every alerting rule of the rules file."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_the_rules_and_the_compose_config() -> None:
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in checked.stdout
    config = promtool("check", "config", CONFIG)
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout


def test_promtool_unit_tests_pass() -> None:
    tested = promtool("test", "rules", RULE_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_unit_tests_catch_a_rule_that_fires_too_early(tmp_path: Path) -> None:
    """Without their ``for:`` durations the rules fire where the tests expect quiet."""
    hasty = tmp_path / "imageledger-rules.yaml"
    hasty.write_text(re.sub(r"^\s+for: \S+\n", "", RULES.read_text(), flags=re.MULTILINE))
    tests = tmp_path / "rules.test.yaml"
    tests.write_text(RULE_TESTS.read_text().replace("../../../deploy/prometheus/", ""))
    tested = promtool("test", "rules", tests)
    assert tested.returncode != 0
    for name in ("ImageledgerRefreshFailing", "ImageledgerRefreshStale"):
        assert f"alertname: {name}" in tested.stdout + tested.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases: dict[str, set[bool]] = {}
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in test["alert_rule_test"]:
            cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    names = [rule["alert"] for rule in alerts()]
    assert sorted(cases) == sorted(names)
    assert all(cases[name] == {True, False} for name in names), cases


def test_each_alert_says_what_to_look_at_and_has_a_runbook_section() -> None:
    doc = ALERTS_DOC.read_text()
    sections = re.findall(r"^## (Imageledger\w+)$", doc, flags=re.MULTILINE)
    names = [rule["alert"] for rule in alerts()]
    assert sections == names, "one section per alert, in the rules' order"
    for rule in alerts():
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, rule["alert"]
        assert annotations["runbook_url"] == f"docs/alerts.md#{rule['alert'].lower()}"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        pointers = re.findall(r"`(imageledger [a-z-]+|/healthz)", annotations["description"])
        panels = re.findall(
            r"\w+ panel|dashboard\.\w+|pg_stat_activity", annotations["description"]
        )
        assert pointers or panels, f"{rule['alert']}: say what to look at"


def test_the_commands_named_exist() -> None:
    text = ALERTS_DOC.read_text() + RULES.read_text()
    named = set(re.findall(r"`imageledger ([a-z-]+)", text))
    assert named, "the runbooks name commands"
    assert named <= set(main.commands), named - set(main.commands)


def test_the_metrics_read_are_the_documented_ones() -> None:
    documented = set(re.findall(r"^\| `(imageledger_\w+)` \|", ALERTS_DOC.read_text(), re.M))
    read = set()
    for rule in alerts():
        read |= set(re.findall(r"\b(imageledger_\w+)", rule["expr"]))
    read = {re.sub(r"_(bucket|sum|count)$", "", name) for name in read}
    assert read <= documented, read - documented


def test_the_prometheus_rule_wraps_the_same_groups() -> None:
    wrapped = yaml.safe_load(OPERATOR_RULE.read_text())
    assert wrapped["apiVersion"] == "monitoring.coreos.com/v1"
    assert wrapped["kind"] == "PrometheusRule"
    assert wrapped["metadata"]["name"] == "imageledger"
    assert wrapped["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
