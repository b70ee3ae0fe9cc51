"""The Grafana dashboard as code: ``python deploy/grafana/dashboard.py`` writes imageledger.json.

SQL panels read schema ``dashboard`` through the PostgreSQL data source (as
``imageledger_reader``), their queries in ``queries/<name>.sql``; the worker panels read
Prometheus. ``docs/dashboards.md`` documents every panel; the data source uids are those of
``provisioning/datasources/imageledger.yaml``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    ValueMap,
    ValueMappingResult,
)

__all__ = ["HERE", "POSTGRES", "PROMETHEUS", "build", "render"]

HERE = Path(__file__).resolve().parent
POSTGRES = DataSourceRef(type_val="grafana-postgresql-datasource", uid="imageledger-postgres")
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="imageledger-prometheus")
STATES = {
    "present": "green",
    "pending": "blue",
    "in_flight": "yellow",
    "failed": "orange",
    "parked": "red",
}


class SqlQuery(cogvariants.Dataquery):
    """A raw SQL target of the PostgreSQL data source (the SDK has no builder for it)."""

    def __init__(self, name: str, output: str) -> None:
        self.name = name
        self.output = output

    def to_json(self) -> dict[str, object]:
        """The target as the PostgreSQL data source stores it (code mode, raw SQL)."""
        return {
            "datasource": POSTGRES.to_json(),
            "editorMode": "code",
            "format": self.output,
            "rawQuery": True,
            "rawSql": (HERE / "queries" / f"{self.name}.sql").read_text().strip(),
            "refId": "A",
        }


class Sql(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builds a :class:`SqlQuery` from ``queries/<name>.sql``."""

    def __init__(self, name: str, output: str = "table") -> None:
        self._query = SqlQuery(name, output)

    def build(self) -> cogvariants.Dataquery:
        """The query."""
        return self._query


def promql(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    """A Prometheus range query with a legend."""
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref)
        .datasource(PROMETHEUS)
        .range()
    )


def sql_table(title: str, query: str, description: str, height: int, width: int) -> table.Panel:
    """A table over one SQL query."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(POSTGRES)
        .with_target(Sql(query))
        .height(height)
        .span(width)
    )


def prom_series(title: str, description: str, unit: str, width: int) -> timeseries.Panel:
    """A Prometheus time series panel (targets added by the caller)."""
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .height(8)
        .span(width)
    )


def state_colors() -> ValueMap:
    """One colour per prepull state, as in ``imageledger status``."""
    return ValueMap(
        {
            state: ValueMappingResult(text=state, color=color, index=index)
            for index, (state, color) in enumerate(STATES.items())
        }
    )


def prepull_panels() -> list[Any]:
    """Row "Prepulls": status per image, time to prepull, the matrix."""
    matrix = (
        sql_table(
            "Prepull matrix (the 200 nodes worst off)",
            "prepull_matrix",
            "Target images (columns) on the counted nodes that lack at least one (rows): "
            "present, pending, in_flight, failed or parked. dashboard.prepull_queue.",
            12,
            24,
        )
        .with_transformation(
            DataTransformerConfig(
                id_val="groupingToMatrix",
                options={"columnField": "tag", "rowField": "node", "valueField": "state"},
            )
        )
        .mappings([state_colors()])
        .cell_options(common.TableColoredBackgroundCellOptions())
    )
    rollout = sql_table(
        "Time to prepull per image",
        "image_rollout",
        "From the first sighting of a digest in the registry to the moment the last counted "
        "node had it. dashboard.image_rollout.",
        8,
        12,
    ).override_by_name("time_to_prepull_seconds", [_unit("s")])
    status = sql_table(
        "Prepull status per image",
        "prepull_status",
        "Counted (eligible, current) nodes that have and lack each prepull target. "
        "dashboard.prepull_status.",
        8,
        12,
    )
    return [status, rollout, matrix]


def failure_panels() -> list[Any]:
    """Row "Failures": failing and parked pairs, and their reasons."""
    pairs = sql_table(
        "Parked and failing pairs",
        "failing_pairs",
        "Pairs whose last prepull failed (retried with back-off) or that are parked (no "
        "attempt until `imageledger unpark`), with the last reason. dashboard.prepull_queue.",
        9,
        16,
    ).mappings([state_colors()])
    reasons = sql_table(
        "Failure reasons",
        "failure_reasons",
        "Failing and parked pairs grouped by reason. dashboard.prepull_queue.",
        9,
        8,
    )
    return [pairs, reasons]


def registry_panels() -> list[Any]:
    """Row "Registry": tag moves and refreshes."""
    moves_over_time = (
        timeseries.Panel()
        .title("Tag moves over time")
        .description("Tags that came to name another digest, per interval. dashboard.tag_history.")
        .datasource(POSTGRES)
        .with_target(Sql("tag_moves_over_time", "time_series"))
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(80)
        .height(8)
        .span(12)
    )
    moves = sql_table(
        "Tag moves",
        "tag_moves",
        "Every move in the time range, newest first. dashboard.tag_history.",
        8,
        12,
    )
    cost = (
        timeseries.Panel()
        .title("Refresh cost and failures")
        .description(
            "Registry requests and retries of the refreshes started per interval, and how "
            "many failed. dashboard.refreshes."
        )
        .datasource(POSTGRES)
        .with_target(Sql("refresh_cost", "time_series"))
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(60)
        .height(8)
        .span(12)
    )
    history = sql_table(
        "Refresh history",
        "refresh_history",
        "Refreshes in the time range, newest first: outcome, changes, cost, reason of a "
        "failure. dashboard.refreshes.",
        8,
        12,
    ).override_by_name("duration_seconds", [_unit("s")])
    return [moves_over_time, moves, cost, history]


def node_panels() -> list[Any]:
    """Row "Nodes": counts and the node list."""
    counts = (
        stat.Panel()
        .title("Nodes")
        .description(
            "Eligible and current nodes (counted for prepulls), ineligible, gone, and counted "
            "nodes whose kubelet list was truncated. dashboard.nodes."
        )
        .datasource(POSTGRES)
        .with_target(Sql("node_counts"))
        .height(4)
        .span(24)
    )
    nodes = sql_table(
        "Nodes and eligibility",
        "nodes",
        "Every node: eligible or why not, prepull targets it lacks, its kubelet list. "
        "dashboard.nodes, dashboard.prepull_queue.",
        10,
        24,
    )
    return [counts, nodes]


def _unit(unit: str) -> DynamicConfigValue:
    return DynamicConfigValue(id_val="unit", value=unit)


RATE = "[$__rate_interval]"


def traffic_panels() -> list[Any]:
    """Row "Workers", first line: messages, events and dead letters per interval."""
    throughput = (
        prom_series(
            "Messages per second",
            "Messages consumed per queue and published per routing key, all workers.",
            "ops",
            8,
        )
        .with_target(promql(f"sum by (queue) (rate(imageledger_messages_consumed_total{RATE}))",
                            "in {{queue}}"))
        .with_target(promql(
            f"sum by (routing_key) (rate(imageledger_messages_published_total{RATE}))",
            "out {{routing_key}}", "B"))
    )  # fmt: skip
    events = prom_series(
        "Events appended per second", "Events appended to the log, by type.", "ops", 8
    ).with_target(
        promql(f"sum by (type) (rate(imageledger_events_appended_total{RATE}))", "{{type}}")
    )
    dead = prom_series(
        "Dead letters",
        "Messages dead-lettered per interval, by routing key and reason "
        "(`imageledger dead-letters list`).",
        "short",
        8,
    ).with_target(
        promql(
            "sum by (routing_key, reason) "
            f"(increase(imageledger_messages_dead_lettered_total{RATE}))",
            "{{routing_key}} {{reason}}",
        )
    )
    return [throughput, events, dead]


def lag_panels() -> list[Any]:
    """Row "Workers", second line: lag, fold latency and the prepull backlog."""
    lag = (
        prom_series(
            "Lag",
            "How far behind: time since the last successful refresh, age of the oldest "
            "unpublished outbox row.",
            "s",
            8,
        )
        .with_target(promql(
            "time() - max by (registry, repository) "
            "(imageledger_refresh_last_success_timestamp_seconds)",
            "since refresh {{repository}}"))
        .with_target(promql("max(imageledger_outbox_oldest_age_seconds)", "oldest outbox row",
                            "B"))
    )  # fmt: skip
    fold = prom_series(
        "Fold latency", "Time to handle and commit a batch, per queue.", "s", 8
    ).with_target(
        promql(
            "histogram_quantile(0.99, sum by (le, queue) "
            f"(rate(imageledger_fold_seconds_bucket{RATE})))",
            "p99 {{queue}}",
        )
    )
    prepulls = (
        prom_series(
            "Prepull backlog",
            "(image, node) pairs in flight, failed or parked, and counted nodes missing each "
            "target.",
            "short",
            8,
        )
        .with_target(promql("max by (state) (imageledger_prepulls)", "{{state}}"))
        .with_target(promql(
            "max by (tag) (imageledger_prepull_target_missing_nodes)", "missing {{tag}}", "B"))
    )  # fmt: skip
    return [lag, fold, prepulls]


def build() -> dict[str, Any]:
    """The dashboard as the JSON object Grafana provisions."""
    board = (
        dashboard.Dashboard("imageledger")
        .uid("imageledger")
        .description("Prepulls, registry refreshes and nodes from schema dashboard; workers.")
        .tags(["imageledger"])
        .time("now-24h", "now")
        .refresh("1m")
        .timezone("utc")
        .readonly()
    )
    rows = [
        ("Prepulls", prepull_panels()),
        ("Failures", failure_panels()),
        ("Registry", registry_panels()),
        ("Nodes", node_panels()),
        ("Workers (Prometheus)", traffic_panels() + lag_panels()),
    ]
    for title, panels in rows:
        board = board.with_row(dashboard.Row(title))
        for panel in panels:
            board = board.with_panel(panel)
    document: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    for number, panel in enumerate(document["panels"], 1):
        panel["id"] = number
    return document


def render() -> str:
    """The dashboard file's text."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    target = HERE / "imageledger.json"
    target.write_text(render())
    sys.stdout.write(f"wrote {target}\n")
