"""``imageledger explain``: why an image is or is not prepulled on a node, from a real ledger."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.support.cli_scenario import SOURCE, A, C, append, build
from tests.support.database import url_for
from worker.cli import main
from worker.domain.events import PrepullFailed, PrepullRequested

CONFIG = """\
images:
  source: {type: docker, registry: registry.test, repository: lsst/sciplat}
prepull:
  maxAttempts: 3
  backoff: 1h
"""


def explain(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["explain", "--database-url", url, *args], env=env)


def answer(url: str, *args: str) -> dict[str, Any]:
    result = explain(url, *args, "--json")
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def texts(document: dict[str, Any], topic: str) -> list[str]:
    return [f["text"] for f in document["findings"] if f["topic"] == topic]


@pytest.fixture
def ledger(database_url: str) -> str:
    build(database_url)
    return database_url


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


def test_a_parked_pair_with_its_failures(ledger: str, config: Path) -> None:
    result = explain(ledger, "d_2077_10_23", "node2", "--config", str(config))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith(" on node2: parked")
    assert lines[0].startswith("registry.test/lsst/sciplat:d_2077_10_23@sha256:ccc")
    assert "  + target   policy: it is the newest daily (images.numDailies: 1)" in lines
    assert "  + node     node matches the node selector (pool=lab)" in lines
    assert (
        "  - prepull  failed at 2025-01-06T12:35:00+00:00: ErrImagePull: manifest unknown (3)"
        in lines
    )
    assert (
        "    prepull  3 prepull request(s), 3 failure(s) in all, 3 consecutive (parked after 3)"
        in lines
    )
    assert "  - prepull  parked: 3 consecutive failures (`imageledger unpark` tries again)" in lines
    assert lines[-1] == "  (prepull settings: from the configuration)"


def test_present_planned_and_not_a_target(ledger: str) -> None:
    present = answer(ledger, "w_2077_43", "node1")
    assert (present["verdict"], present["present"], present["target"]) == ("present", True, True)
    assert texts(present, "presence") == [
        "digest is on the node: seen by the kubelet image list at 2025-01-06T12:05:00+00:00,"
        " present since 2025-01-06T12:05:00+00:00"
    ]
    planned = answer(ledger, "registry.test/lsst/sciplat:w_2077_43", "node5")
    assert planned["verdict"] == "planned"
    assert "(the node never reported a kubelet image list)" in texts(planned, "presence")[0]
    older = answer(ledger, "w_2077_41", "node1")
    assert (older["verdict"], older["target"]) == ("not_planned", False)
    assert texts(older, "target") == [
        "not a prepull target",
        "policy: it is number 3 of the weeklies: only the newest 2 are prepulled"
        " (images.numWeeklies: 2; newest: w_2077_43, w_2077_42)",
    ]
    by_digest = answer(ledger, C, "node2")
    assert (by_digest["image"].split("@")[0], by_digest["verdict"]) == (
        "registry.test/lsst/sciplat:d_2077_10_23", "parked",
    )  # fmt: skip


def test_ineligible_and_unselected_nodes(ledger: str) -> None:
    tainted = answer(ledger, "recommended", "node3")
    assert tainted["verdict"] == "not_planned"
    assert tainted["summary"] == (
        "not planned: the node is not eligible (Node is tainted (NoSchedule, gpu = true))"
    )
    assert tainted["pulled_as"] == "w_2077_43"
    assert "taint (NoSchedule, gpu = true) not tolerated" in texts(tainted, "node")
    assert "policy: it is the recommended tag (images.recommendedTag)" in texts(tainted, "target")
    outside = answer(ledger, "w_2077_42", "node4")
    assert (outside["node_selected"], outside["node_eligible"]) == (False, False)
    assert texts(outside, "node")[0] == "node does not match the node selector (pool=lab)"


def test_back_off_in_flight_and_caps(ledger: str, config: Path) -> None:
    now = datetime.now(tz=UTC)
    asyncio.run(append(ledger, [
        PrepullRequested(node="node5", tag="w_2077_43", digest=A, deadline=now,
                         occurred_at=now - timedelta(minutes=2), **SOURCE),
        PrepullFailed(node="node5", tag="w_2077_43", digest=A, reason="ErrImagePull",
                      occurred_at=now - timedelta(minutes=1), **SOURCE),
        PrepullRequested(node="node1", tag="d_2077_10_23", digest=C, attempt=2,
                         deadline=now + timedelta(hours=1), occurred_at=now, **SOURCE),
    ]))  # fmt: skip
    waiting = answer(ledger, "w_2077_43", "node5", "--config", str(config))
    retry = (now - timedelta(minutes=1) + timedelta(hours=1)).isoformat()
    assert (waiting["verdict"], waiting["next_retry_at"]) == ("waiting", retry)
    assert waiting["summary"].startswith("waiting: retried after back-off, at ")
    without_config = answer(ledger, "w_2077_43", "node5")
    assert without_config["verdict"] == "planned"  # the default back-off (1m) has passed
    in_flight = answer(ledger, "d_2077_10_23", "node1")
    assert in_flight["verdict"] == "in_flight"
    assert texts(in_flight, "prepull")[-1].startswith("in flight since ")
    capped = answer(ledger, "w_2077_42", "node1")
    assert capped["summary"] == (
        "waiting: the node or the cluster has as many prepulls in flight as allowed"
    )


def test_unknown_image_and_node_exit_3(ledger: str) -> None:
    unknown = explain(ledger, "w_1999_01", "node1")
    assert unknown.exit_code == 3
    assert unknown.stderr.strip() == (
        "imageledger: error: unknown image w_1999_01: no repository lists that tag"
    )
    removed = explain(ledger, "latest_weekly", "node1")
    assert removed.exit_code == 3
    assert removed.stderr.strip() == (
        "imageledger: error: unknown image latest_weekly: registry.test/lsst/sciplat:latest_weekly"
        " was removed at 2025-01-06T14:00:00+00:00"
    )
    digest = explain(ledger, "sha256:" + "e" * 64, "node1")
    assert digest.exit_code == 3
    assert "no current tag names that digest" in digest.stderr
    node = explain(ledger, "w_2077_43", "nodeX")
    assert node.exit_code == 3
    assert node.stdout.splitlines()[1] == "  not planned: the node is not known"
    assert node.stderr.strip() == (
        "imageledger: error: unknown node nodeX: it never reported an inventory"
    )


def test_bad_input_bad_config_and_missing_database(ledger: str, tmp_path: Path) -> None:
    bad = explain(ledger, "nope:x", "node1")
    assert bad.exit_code == 2
    assert bad.stderr.strip() == (
        'imageledger: error: IMAGE: "nope:x" is neither a tag nor a digest (sha256:...)'
    )
    config = tmp_path / "bad.yaml"
    config.write_text(
        "images:\n  source: {type: docker, repository: x}\nprepull:\n  backoff: soon\n"
    )
    broken = explain(ledger, "w_2077_43", "node1", "--config", str(config))
    assert broken.exit_code == 2
    assert len(broken.stderr.splitlines()) == 1
    assert broken.stderr.strip() == (
        f"imageledger: error: invalid {config}: cannot parse duration 'soon'"
        " (expected e.g. '5m', '2w', '1h30m') @ $.prepull.backoff"
    )
    missing = explain(ledger, "w_2077_43", "node1", env={"IMAGELEDGER_CONFIG": str(tmp_path / "x")})
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr
    gone = explain(url_for("il_missing"), "w_2077_43", "node1")
    assert gone.exit_code == 1
    assert gone.stderr.strip().splitlines() == [
        'imageledger: error: cannot read dashboard.tags: database "il_missing" does not exist'
        " (postgresql+asyncpg://postgres@127.0.0.1:5432/il_missing)"
    ]
