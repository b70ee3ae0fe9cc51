"""The status page's overview over a small cluster's log: each matrix state with its
tooltip, nodes apart, parked pairs with their command, tag moves with their tags."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.cli_scenario import build, minutes
from worker.adapters.ledger import ConsoleStore
from worker.services.console import DeadLetters, overview


async def test_every_cell_state_and_what_surrounds_the_matrix(
    database_url: str, engine: AsyncEngine
) -> None:
    await asyncio.to_thread(build, database_url)
    dead = DeadLetters("imageledger.dead", 3)
    answer = await overview(ConsoleStore(engine), minutes(200), dead)

    assert answer.nodes == ("node1", "node2", "node5")
    assert [(r.tag, r.recommended) for r in answer.rows] == [
        ("w_2077_43", True), ("w_2077_42", False), ("d_2077_10_23", False),
    ]  # fmt: skip
    states = {(r.tag, c.node): c.state for r in answer.rows for c in r.cells}
    assert states == {
        ("w_2077_43", "node1"): "present", ("w_2077_43", "node2"): "present",
        ("w_2077_43", "node5"): "waiting",
        ("w_2077_42", "node1"): "waiting", ("w_2077_42", "node2"): "failed",
        ("w_2077_42", "node5"): "waiting",
        ("d_2077_10_23", "node1"): "pulling", ("d_2077_10_23", "node2"): "parked",
        ("d_2077_10_23", "node5"): "waiting",
    }  # fmt: skip
    assert answer.counts == {"present": 2, "pulling": 1, "waiting": 4, "failed": 1, "parked": 1}
    tips = {(r.tag, c.node): c.tooltip for r in answer.rows for c in r.cells}
    assert tips[("w_2077_43", "node1")] == f"present since {minutes(5).isoformat()} (inventory)"
    assert tips[("w_2077_42", "node2")] == (
        "failed 1 time(s) in a row; retried after back-off\nreason: pod timed out\n"
        f"1 attempt(s), last attempt: {minutes(55).isoformat()}"
    )
    assert tips[("d_2077_10_23", "node1")].startswith(
        f"pulling since {minutes(40).isoformat()} (overdue)\n"
    )
    assert tips[("d_2077_10_23", "node2")] == (
        "parked after 3 consecutive failure(s)\nreason: 3 consecutive failures\n"
        f"3 attempt(s), last attempt: {minutes(35).isoformat()}"
    )
    assert tips[("w_2077_43", "node5")] == (
        "waiting for a prepull request\n0 attempt(s), last attempt: none yet"
    )

    assert answer.ineligible == (
        ("node3", "Node is tainted (NoSchedule, gpu = true)"),
        ("node4", "Node does not match the node selector"),
    )
    assert [(p.tag, p.node, p.failures, p.command) for p in answer.parked] == [
        ("d_2077_10_23", "node2", 3, "imageledger unpark d_2077_10_23 node2"),
    ]
    assert [(m["tag"], m["previous_tag"], m["new_tag"]) for m in answer.moves] == [
        ("latest_weekly", "w_2077_42", "w_2077_43"),
    ]
    assert [m["display_name"] for m in answer.radio] == ["Recommended (Weekly 2077_43)"]
    assert len(answer.dropdown) == 5
    assert answer.dead_letters == dead
    later = await overview(ConsoleStore(engine), minutes(60 * 24 * 8), dead)
    assert later.moves == ()  # only the last 7 days
