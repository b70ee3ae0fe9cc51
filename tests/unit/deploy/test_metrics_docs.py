"""The worker's metrics are the table of docs/alerts.md: names, types and labels, no more."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from worker.adapters.metrics import WorkerMetrics
from worker.domain.events import RefreshFailed
from worker.domain.figures import LedgerFigures, PrepullTargetFigures

ROOT = Path(__file__).resolve().parents[3]
ROW = re.compile(r"^\| `(imageledger_\w+)` \| (\w+) \|([^|]*)\|", re.MULTILINE)


def documented() -> dict[str, tuple[str, frozenset[str]]]:
    table = (ROOT / "docs/alerts.md").read_text()
    return {
        name.removesuffix("_total"): (
            kind,
            frozenset(re.findall(r"`(\w+)`", labels.split(" (")[0])),
        )
        for name, kind, labels in ROW.findall(table)
    }


def every_metric_fed() -> WorkerMetrics:
    """A worker's metrics with each hook called once, so every family has a series."""
    metrics = WorkerMetrics()
    metrics.consumed("pod_completed", 2)
    metrics.retried("pod_completed", 1)
    metrics.batch_handled("pod_completed", 2, 0.01)
    metrics.published("prepull.requested", 1)
    metrics.dead_lettered("node.inventory", "invalid", 1)
    metrics.registry_request("HEAD", 200)
    metrics.registry_request("GET", None)
    metrics.events_appended({"prepull.succeeded": 2})
    at = datetime(2077, 11, 1, tzinfo=UTC)
    failed = RefreshFailed(
        registry="reg.test", repository="lab", refresh_id="r1", started_at=at, reason="x",
        duration_seconds=0.5, occurred_at=at,
    )  # fmt: skip
    metrics.refresh_finished(failed, "timeout")
    metrics.set_refresh_interval("reg.test", "lab", 300)
    metrics.set_consumers({"refresh": 1, "pod_completed": 1, "node_inventory": 0})
    target = PrepullTargetFigures("reg.test", "lab", "w_2077_43", 3, 1, 2, 75.0)
    metrics.set_figures(LedgerFigures("reg.test", "lab", at, (target,), {"in_flight": 2}, 4, 12.5))
    return metrics


def test_every_served_metric_is_documented_with_its_type_and_labels() -> None:
    text = every_metric_fed().render().decode()
    served = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("imageledger_"):
            labels = {k for s in family.samples for k in s.labels if k != "le"}
            served[family.name] = (family.type, frozenset(labels))
    assert served == documented()


def test_the_ledger_figures_are_what_was_read() -> None:
    text = every_metric_fed().render().decode()
    target = '{registry="reg.test",repository="lab",tag="w_2077_43"}'
    assert f"imageledger_prepull_target_eligible_nodes{target} 3.0" in text
    assert f"imageledger_prepull_target_missing_nodes{target} 2.0" in text
    assert f"imageledger_prepull_target_oldest_missing_age_seconds{target} 75.0" in text
    (last,) = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "imageledger_refresh_last_success_timestamp_seconds"
    ]
    assert last == datetime(2077, 11, 1, tzinfo=UTC).timestamp()
    assert 'imageledger_prepulls{state="succeeded"} 0.0' in text
    assert 'imageledger_prepulls{state="in_flight"} 2.0' in text
    assert 'imageledger_refresh_failures_total{reason="timeout"} 1.0' in text
    assert 'imageledger_refresh_failures_total{reason="auth"} 0.0' in text
    assert 'imageledger_registry_requests_total{method="GET",status="none"} 1.0' in text
    assert "_created" not in text


def test_before_the_first_read_no_ledger_gauge_is_served() -> None:
    text = WorkerMetrics().render().decode()
    assert "imageledger_prepulls{" not in text
    assert "imageledger_outbox_backlog " not in text
    assert "process_cpu_seconds_total" in text
