"""The Grafana dashboard and its provisioning files have Grafana's documented shape, the
dashboard file is what its generator writes, and its PromQL is valid and documented."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.grafana.dashboard import render
from tests.support.grafana import DASHBOARD, TimeRange, expand, panels

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "deploy/grafana"
DATASOURCES = GRAFANA / "provisioning/datasources/imageledger.yaml"
PROVIDERS = GRAFANA / "provisioning/dashboards/imageledger.yaml"
BOARD: dict[str, Any] = json.loads(DASHBOARD.read_text())
SQL_FORMATS = {"table", "time_series"}


def provisioned() -> dict[str, dict[str, Any]]:
    """The provisioned data sources by uid."""
    document = yaml.safe_load(DATASOURCES.read_text())
    assert document["apiVersion"] == 1
    return {source["uid"]: source for source in document["datasources"]}


def test_the_file_is_what_the_generator_writes() -> None:
    assert DASHBOARD.read_text() == render(), "run: python deploy/grafana/dashboard.py"


def test_dashboard_has_the_keys_grafana_requires() -> None:
    for key in ("title", "uid", "panels", "schemaVersion", "time", "timezone"):
        assert key in BOARD, key
    assert BOARD["uid"] == "imageledger"
    assert isinstance(BOARD["schemaVersion"], int)
    ids = [panel["id"] for panel in BOARD["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    assert all(isinstance(i, int) and i > 0 for i in ids)


def test_panels_sit_on_the_grid_without_overlapping() -> None:
    boxes = []
    for panel in BOARD["panels"]:
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"}, panel["title"]
        assert all(isinstance(v, int) and v >= 0 for v in grid.values())
        assert min(grid["w"], grid["h"]) >= 1
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        boxes.append((panel["title"], grid))
    for (a, p), (b, q) in combinations(boxes, 2):
        apart = (p["x"] + p["w"] <= q["x"] or q["x"] + q["w"] <= p["x"]
                 or p["y"] + p["h"] <= q["y"] or q["y"] + q["h"] <= p["y"])  # fmt: skip
        assert apart, f"{a} overlaps {b}"


def test_every_panel_uses_a_provisioned_data_source() -> None:
    sources = provisioned()
    for panel in BOARD["panels"]:
        if panel["type"] == "row":
            continue
        assert panel.get("description"), panel["title"]
        refs = [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]
        for ref in refs:
            assert ref["uid"] in sources, panel["title"]
            assert ref["type"] == sources[ref["uid"]]["type"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"]
            if "rawSql" in target:
                assert target["format"] in SQL_FORMATS
                assert target["rawQuery"] is True
            else:
                assert target["expr"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_every_query_file_is_a_panel_and_reads_only_schema_dashboard() -> None:
    files = {p.read_text().strip() for p in (GRAFANA / "queries").glob("*.sql")}
    used = [panel.sql for panel in panels()]
    assert sorted(used) == sorted(files)
    for sql in used:
        relations = re.findall(r"\b(?:FROM|JOIN)\s+(\w+\.\w+)", sql, flags=re.IGNORECASE)
        assert relations, sql
        assert all(r.startswith("dashboard.") for r in relations), relations


def test_provisioning_files_have_grafanas_shape() -> None:
    sources = provisioned()
    postgres = sources["imageledger-postgres"]
    assert postgres["type"] == "grafana-postgresql-datasource"
    assert postgres["user"] == "imageledger_reader"
    assert postgres["jsonData"]["database"] == "imageledger"
    assert set(postgres["secureJsonData"]) == {"password"}
    assert postgres["secureJsonData"]["password"].startswith("$")  # from the environment
    assert sources["imageledger-prometheus"]["type"] == "prometheus"
    for source in sources.values():
        assert {"name", "type", "uid", "access", "url"} <= set(source)
        assert source["access"] == "proxy"
    providers = yaml.safe_load(PROVIDERS.read_text())
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert {"name", "folder", "options"} <= set(provider)
    assert provider["options"]["path"].startswith("/")


def prometheus_exprs() -> list[str]:
    """Every PromQL expression of the dashboard."""
    return [t["expr"] for p in BOARD["panels"] for t in p.get("targets", []) if "expr" in t]


def test_promql_is_valid_and_reads_documented_metrics(tmp_path: Path) -> None:
    exprs = prometheus_exprs()
    assert exprs
    rules = [{"record": f"dashboard:panel_{n}", "expr": e.replace("$__rate_interval", "5m")}
             for n, e in enumerate(exprs)]  # fmt: skip
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: apt-get install -y prometheus"
    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                             text=True, timeout=60, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    table = (ROOT / "docs/alerts.md").read_text()
    documented = set(re.findall(r"^\| `(imageledger_\w+)` \|", table, re.MULTILINE))
    read = {re.sub(r"_bucket$", "", m) for e in exprs for m in re.findall(r"imageledger_\w+", e)}
    assert read <= documented, read - documented


def test_every_panel_is_documented() -> None:
    doc = (ROOT / "docs/dashboards.md").read_text()
    headings = set(re.findall(r"^### (.+)$", doc, flags=re.MULTILINE))
    titles = {p["title"] for p in BOARD["panels"] if p["type"] != "row"}
    assert titles <= headings, titles - headings


SPAN = TimeRange(
    datetime(2077, 3, 1, tzinfo=UTC), datetime(2077, 3, 2, 0, 0, 1, 250000, tzinfo=UTC), "5m"
)


@pytest.mark.parametrize(
    ("sql", "expanded"),
    [
        ("WHERE $__timeFilter(t)",
         "WHERE t BETWEEN '2077-03-01T00:00:00Z' AND '2077-03-02T00:00:01.25Z'"),
        ("SELECT $__timeGroupAlias(t, $__interval, 0)",
         'SELECT floor(extract(epoch from t)/300)*300 AS "time"'),
        ("SELECT $__timeGroup(t, '1h'), x",
         'SELECT floor(extract(epoch from t)/3600)*3600 AS "time", x'),
        ("GROUP BY $__timeGroup(t, '1h')", "GROUP BY floor(extract(epoch from t)/3600)*3600"),
        ("$__timeFrom() < t AND t < $__timeTo()",
         "'2077-03-01T00:00:00Z' < t AND t < '2077-03-02T00:00:01.25Z'"),
        ("SELECT $__time(t), $__interval_ms", 'SELECT t AS "time", 300000'),
    ],
)  # fmt: skip
def test_macros_expand_as_grafana_expands_them(sql: str, expanded: str) -> None:
    assert expand(sql, SPAN) == expanded


def test_an_unknown_macro_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown macro"):
        expand("SELECT $__unixEpochNanoGroup(t, '1m')", SPAN)
