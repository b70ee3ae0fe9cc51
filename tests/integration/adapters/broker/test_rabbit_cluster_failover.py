"""A three-node RabbitMQ cluster loses the node leading the quorum queues while two workers
fold: nothing lost, nothing twice, projections equal a rebuild, both workers consume again.

The small version of ``bench/cluster.py`` (2,000 messages instead of 20,000); 30–60 s,
most of it booting the three nodes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cluster_scenario import ClusterScenario, run_cluster_scenario
from tests.support.database import ADMIN_URL
from tests.support.rabbit_cluster import cluster_unavailable

pytestmark = pytest.mark.slow


async def test_two_workers_survive_the_loss_of_the_quorum_leader_node(tmp_path: Path) -> None:
    unavailable = cluster_unavailable()
    if unavailable:
        pytest.fail(unavailable)
    scenario = ClusterScenario(messages=2_000, rate=500, admin_url=ADMIN_URL, logs=tmp_path)
    result = await run_cluster_scenario(scenario)
    checks = result["checks"]

    assert checks["all_folded"], checks
    assert checks["missing"] == 0, checks["missing_sample"]
    assert checks["wrong_effect"] == 0, checks["wrong_sample"]
    assert checks["events"] == checks["events_expected"] == 2_500  # 1,500 + 2 x 500
    assert checks["unexpected_causations"] == 0
    assert checks["duplicate_keys"] == 0
    assert checks["dead_lettered"] == 0
    assert checks["rebuild_differs"] == []
    assert checks["workers_exit_codes"] == [0, 0]
    assert checks["workers_healthy"] == [True, True]
    assert set(checks["consumers"].values()) == {2}, checks["consumers"]
    assert result["passed"]

    stop = result["stop"]
    assert stop["leaders"]["imageledger.pod_completed"] == stop["node"]
    first, second = result["resume"]["workers"]
    assert first["first_node"] == stop["node"]
    assert first["failovers"] >= 1  # worker 1 lost its node and moved on
    assert first["reconnected_s"] is not None
    assert first["folding_again_s"] is not None
    assert second["failovers"] == 0  # worker 2's node stayed up
    assert second["reconnected_s"] is None
    resume = result["resume"]
    assert resume["first_fold_s"] is not None
    assert resume["in_flight_folded_s"] is not None
    assert resume["in_flight_folded_s"] < 30
