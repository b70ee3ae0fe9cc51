"""``imageledger menu`` and ``status`` (per image and per node) over a small cluster's views."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner

from tests.integration.migrations.test_readme_queries import derive, history
from worker.adapters.ledger.database import make_engine
from worker.adapters.ledger.eventlog import EventLog
from worker.cli import main


async def _populate(url: str) -> None:
    engine = make_engine(url)
    try:
        log = EventLog(engine)
        await log.append(history())
        await derive(log)
    finally:
        await engine.dispose()


def test_status_per_image_and_per_node(database_url: str) -> None:
    asyncio.run(_populate(database_url))
    runner = CliRunner()
    env = {"IMAGELEDGER_DATABASE_URL": database_url}

    images = runner.invoke(main, ["status", "--json"], env=env)
    assert images.exit_code == 0, images.output
    assert [
        (r["tag"], r["present_nodes"], r["missing_nodes"]) for r in json.loads(images.output)
    ] == [
        ("w_2077_44", 1, 1),
        ("w_2077_43", 2, 0),
        ("d_2077_10_23", 0, 2),
    ]

    nodes = runner.invoke(main, ["status", "--nodes", "--json"], env=env)
    assert nodes.exit_code == 0, nodes.output
    assert [(r["node"], r["eligible"], r["missing"]) for r in json.loads(nodes.output)] == [
        ("node1", True, ["d_2077_10_23 (parked)"]),
        ("node2", True, ["w_2077_44", "d_2077_10_23 (failed)"]),
        ("node3", False, []),
    ]
    table = runner.invoke(main, ["status", "--nodes"], env=env)
    assert table.exit_code == 0
    lines = table.output.splitlines()
    # the missing images apart, yes/no, and the column of why not named reason
    assert lines[0].split() == ["node", "eligible", "missing", "missing", "images", "reason"]
    assert lines[2].split()[:5] == ["node2", "yes", "2", "w_2077_44,", "d_2077_10_23"]
    assert lines[3].split()[:3] == ["node3", "no", "0"]
    assert lines[3].endswith("  Node is tainted (NoSchedule, gpu = true)")
    assert all(json.loads(nodes.output)[2][key] for key in ("reason", "node"))

    status = runner.invoke(main, ["status"], env=env)
    assert status.exit_code == 0, status.output
    lines = status.output.splitlines()
    assert lines[0].split() == ["tag", "name", "digest", "prepulled", "present", "missing"]
    # a tag column, the recommended image labelled, short digests, yes/no
    assert lines[1].split() == [
        "w_2077_44", "(recommended)", "Weekly", "2077_44", f"sha256:{'d' * 12}", "no", "1", "1",
    ]  # fmt: skip
    assert lines[2].split()[:2] == ["w_2077_43", "Weekly"]
    assert lines[2].split()[-4:] == [f"sha256:{'a' * 12}", "yes", "2", "0"]
    assert "True" not in status.output
    assert "False" not in status.output

    menu = runner.invoke(main, ["menu", "--json"], env=env)
    assert menu.exit_code == 0
    radio = [r["display_name"] for r in json.loads(menu.output) if r["section"] == "radio"]
    assert radio == ["Recommended (Weekly 2077_44)", "Weekly 2077_43"]
