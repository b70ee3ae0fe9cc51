"""``imageledger unpark``: PrepullUnparked for parked pairs, once, and the planner plans again."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner, Result

from tests.support.cli_scenario import REPO, B, C, append, build, minutes
from tests.support.database import url_for
from worker.adapters.ledger.database import make_engine
from worker.adapters.ledger.eventlog import EventLog
from worker.adapters.ledger.stores.prepull import WorkStore
from worker.cli import main
from worker.domain.events import PrepullParked
from worker.domain.prepull import PrepullSettings, plan_prepulls

PAIR = ("node2", C)
E = "sha256:" + "e" * 64


def unpark(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["unpark", "--database-url", url, *args])


async def _planned_and_log(url: str) -> tuple[set[tuple[str, str]], list[tuple[str, str]]]:
    """The pairs the planner would request now, and the unpark events of the log."""
    engine = make_engine(url)
    try:
        log = EventLog(engine)
        settings = PrepullSettings(in_flight_per_node=10)  # B comes first on node2
        now = datetime.now(tz=UTC)
        async with WorkStore(log).transaction() as unit:
            snapshot = await unit.plan_input(settings, now)
        plan = plan_prepulls(snapshot, settings, now)
        events = [e for e in await log.read() if e.event.TYPE == "prepull.unparked"]
        return (
            {(r.node, r.target.digest) for r in plan.requests},
            [(e.idempotency_key, getattr(e.event, "reason", "")) for e in events],
        )
    finally:
        await engine.dispose()


def planned_and_log(url: str) -> tuple[set[tuple[str, str]], list[tuple[str, str]]]:
    return asyncio.run(_planned_and_log(url))


@pytest.fixture
def ledger(database_url: str) -> str:
    build(database_url)
    return database_url


def test_unpark_appends_once_and_the_planner_requests_the_pair_again(ledger: str) -> None:
    planned, unparks = planned_and_log(ledger)
    assert PAIR not in planned
    assert unparks == []
    result = unpark(ledger, "d_2077_10_23", "--reason", "registry fixed")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "unparked 1 prepull(s) of d_2077_10_23 (registry fixed):"
    assert lines[1].split() == ["node", "digest", "tag", "failures", "reason", "parked_at"]
    assert lines[2].split()[:4] == ["node2", "sha256:cccccccccccc", "d_2077_10_23", "3"]  # short
    planned, unparks = planned_and_log(ledger)
    assert PAIR in planned
    assert len(unparks) == 1
    key, reason = unparks[0]
    assert key.startswith(f"prepull.unparked:node2:{C}:")
    assert reason == "registry fixed"
    again = unpark(ledger, "d_2077_10_23")
    assert again.exit_code == 0
    assert again.stdout.strip() == "nothing parked for d_2077_10_23"
    assert planned_and_log(ledger)[1] == unparks


def test_a_pair_parked_again_can_be_unparked_again(ledger: str) -> None:
    assert unpark(ledger, C, "node2").exit_code == 0
    parked = PrepullParked(registry=REPO.registry, repository=REPO.repository, digest=C,
                           node="node2", failures=5, reason="5 consecutive failures",
                           occurred_at=minutes(90))  # fmt: skip
    asyncio.run(append(ledger, [parked]))
    result = unpark(ledger, "registry.test/lsst/sciplat:d_2077_10_23", "node2", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["reason"] == "operator command"
    assert [(p["node"], p["digest"], p["failures"]) for p in document["unparked"]] == [
        ("node2", C, 5)
    ]
    keys = [k for k, _ in planned_and_log(ledger)[1]]
    assert len(set(keys)) == len(keys) == 2


def test_nothing_parked_on_that_node_or_for_that_image(ledger: str) -> None:
    on_node1 = unpark(ledger, "d_2077_10_23", "node1")
    assert on_node1.exit_code == 0
    assert on_node1.stdout.strip() == "nothing parked for d_2077_10_23 on node1"
    other = unpark(ledger, "w_2077_42", "--json")
    assert json.loads(other.stdout)["unparked"] == []
    assert unpark(ledger, B).exit_code == 0
    assert planned_and_log(ledger)[1] == []


def test_errors_are_one_line_with_their_exit_status(ledger: str) -> None:
    cases = [
        (["w_1999_01"], 3, "unknown image w_1999_01: no repository lists that tag"),
        ([E], 3, f"unknown image {E}: no tag or node knows that digest"),
        (["d_2077_10_23", "nodeX"], 3, "unknown node nodeX: it never reported an inventory"),
        (["bad tag!"], 2, 'IMAGE: "bad tag!" is not a valid tag'),
        (["d_2077_10_23", "--reason", " "], 2, "--reason must not be empty"),
    ]
    for args, code, message in cases:
        result = unpark(ledger, *args)
        assert result.exit_code == code, (args, result.output)
        assert result.stderr.strip() == f"imageledger: error: {message}", args
    missing = unpark(url_for("il_missing"), "d_2077_10_23")
    assert missing.exit_code == 1
    assert missing.stderr.strip().splitlines() == [
        'imageledger: error: cannot read dashboard.tags: database "il_missing" does not exist'
        " (postgresql+asyncpg://postgres@127.0.0.1:5432/il_missing)"
    ]
