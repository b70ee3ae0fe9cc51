"""The status page's answers over a small cluster's log: each matrix state with its
tooltip, nodes apart, parked pairs with their command, tag moves with their tags; the
image and node pages' history and explanations."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.cli_scenario import build, minutes
from worker.adapters.ledger import ConsoleStore, ExplainStore, HistoryStore
from worker.domain.errors import UnknownImageError, UnknownNodeError
from worker.domain.explain import ImageQuery
from worker.domain.prepull import PrepullSettings
from worker.services import console
from worker.services.console import DeadLetters, image_page, node_page, overview


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


async def test_the_image_and_node_pages_say_what_explain_and_history_say(
    database_url: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.to_thread(build, database_url)
    stores = (ConsoleStore(engine), HistoryStore(engine), ExplainStore(engine))
    settings = PrepullSettings()
    image = await image_page(*stores, ImageQuery(tag="latest_weekly"), minutes(90), settings)
    assert image.history is not None
    assert [c.change for c in image.history.changes] == [
        "discovered", "resolved", "moved", "removed",
    ]  # fmt: skip
    assert image.history.tag_of(image.history.changes[2].previous_digest) == "w_2077_42"
    assert image.explanations == ()  # removed since: its history stays, nothing to explain
    assert image.unexplained is not None
    assert image.unexplained.endswith("was removed at 2025-01-06T14:00:00+00:00")
    with pytest.raises(UnknownImageError):
        await image_page(*stores, ImageQuery(tag="w_1999_01"), minutes(90), settings)
    weekly = await image_page(*stores, ImageQuery(tag="w_2077_43"), minutes(90), settings)
    assert [(e.node, e.verdict) for e in weekly.explanations] == [
        ("node1", "present"), ("node2", "present"), ("node3", "not_planned"),
        ("node4", "not_planned"), ("node5", "planned"),
    ]  # fmt: skip
    monkeypatch.setattr(console, "EXPLAINED_NODES", 2)
    capped = await image_page(*stores, ImageQuery(tag="w_2077_43"), minutes(90), settings)
    assert ([e.node for e in capped.explanations], capped.nodes_total) == (["node1", "node2"], 5)
    node = await node_page(*stores, "node2", minutes(90), settings)
    assert node.history.node == "node2"
    assert [i["tag"] for i in node.history.images] == ["w_2077_43"]
    assert [(tag, e.verdict) for tag, e in node.explanations] == [
        ("w_2077_43", "present"), ("w_2077_42", "planned"), ("d_2077_10_23", "parked"),
    ]  # fmt: skip
    with pytest.raises(UnknownNodeError):
        await node_page(*stores, "node9", minutes(90), settings)
