"""``imageledger history``: a tag's digests over time and a node's images, from a real log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner, Result

from tests.support.cli_scenario import A, B, at, build, minutes
from tests.support.database import url_for
from worker.cli import main
from worker.cli.common import parse_time


def history(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["history", "--database-url", url, *args])


@pytest.fixture
def ledger(database_url: str) -> str:
    build(database_url)
    return database_url


def test_a_tag_history_lists_discovery_resolution_move_and_removal(ledger: str) -> None:
    result = history(ledger, "latest_weekly")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "history of tag latest_weekly (images named by the tag they go by now):"
    assert lines[1].split() == ["at", "change", "from", "to", "repository"]
    assert [line.split()[1] for line in lines[2:]] == ["discovered", "resolved", "moved", "removed"]
    # a move names the tags it came from and went to, not only digests
    assert lines[4].split() == [
        minutes(60).isoformat(), "moved", "w_2077_42", "(sha256:bbbbbbbbbbbb)",
        "w_2077_43", "(sha256:aaaaaaaaaaaa)", "registry.test/lsst/sciplat",
    ]  # fmt: skip
    assert lines[3].split()[1:5] == ["resolved", "(not", "resolved)", "w_2077_42"]
    assert lines[5].split()[1:3] == ["removed", "w_2077_43"]
    document = json.loads(history(ledger, "latest_weekly", "--json").stdout)
    assert [(c["change"], c["digest"], c["previous_digest"]) for c in document["changes"]] == [
        ("discovered", None, None),
        ("resolved", B, None),
        ("moved", A, B),
        ("removed", A, None),
    ]
    moved = document["changes"][2]
    assert (moved["previous_digest_tag"], moved["digest_tag"]) == ("w_2077_42", "w_2077_43")
    assert document["changes"][3]["at"] == minutes(120).isoformat()


def test_at_takes_a_time_ago(ledger: str) -> None:
    now = datetime.now(tz=UTC)
    assert parse_time("2h", "--at", relative=True, now=now) == now - timedelta(hours=2)
    assert parse_time("3d", "--at", relative=True, now=now) == now - timedelta(days=3)
    assert parse_time("1h30m ago", "--at", relative=True, now=now) == now - timedelta(minutes=90)
    assert parse_time("2025-01-06T12:30", "--at", relative=True) == minutes(30)
    ago = json.loads(history(ledger, "--node", "node1", "--at", "3d", "--json").stdout)
    assert datetime.fromisoformat(ago["at"]) < now - timedelta(days=3) + timedelta(minutes=1)
    assert [i["digest"] for i in ago["images"]] == [A]
    gone = history(ledger, "latest_weekly", "--at", "2h")
    assert gone.exit_code == 0, gone.output
    assert gone.stdout.startswith("tag latest_weekly was in no repository at ")


def test_at_a_time_shows_the_digest_the_tag_had(ledger: str) -> None:
    result = history(ledger, "registry.test/lsst/sciplat:latest_weekly", "--at", at(30))
    assert result.exit_code == 0, result.output
    assert (
        result.stdout.splitlines()[0]
        == f"tag registry.test/lsst/sciplat:latest_weekly at {at(30)}:"
    )
    assert "sha256:bbbbbbbbbbbb" in result.stdout.splitlines()[2]
    document = json.loads(history(ledger, "latest_weekly", "--at", at(90), "--json").stdout)
    assert [d["digest"] for d in document["digests"]] == [A]
    gone = history(ledger, "latest_weekly", "--at", at(150))
    assert gone.exit_code == 0
    assert gone.stdout.startswith(f"tag latest_weekly was in no repository at {at(150)}")


def test_a_node_at_a_time_and_its_appear_disappear_history(ledger: str) -> None:
    before = json.loads(history(ledger, "--node", "node1", "--at", at(10), "--json").stdout)
    assert [(i["digest"], i["tag"], i["source"]) for i in before["images"]] == [
        (B, "w_2077_42", "inventory"),
        (A, "w_2077_43", "inventory"),
    ]
    assert [(c["change"], c["digest"]) for c in before["changes"]] == [
        ("seen", None), ("appeared", A), ("appeared", B),
    ]  # fmt: skip
    result = history(ledger, "--node", "node1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("node node1 held 1 image(s) at ")
    assert lines[2].split()[:3] == ["sha256:aaaaaaaaaaaa", "w_2077_43", "Weekly"]
    assert "disappeared  sha256:bbbbbbbbbbbb  w_2077_42  inventory" in result.stdout


def test_unknown_tag_and_node_exit_3(ledger: str) -> None:
    tag = history(ledger, "w_1999_01")
    assert tag.exit_code == 3
    assert tag.stderr.strip() == (
        "imageledger: error: unknown tag w_1999_01: no repository ever listed it"
    )
    node = history(ledger, "--node", "nodeX", "--at", at(5))
    assert node.exit_code == 3
    assert node.stderr.strip() == (
        "imageledger: error: unknown node nodeX: it never reported an inventory"
    )


def test_bad_input_exits_2_with_one_line(ledger: str) -> None:
    for args, message in [
        (
            ["latest_weekly", "--at", "yesterday"],
            "--at 'yesterday': give an ISO 8601 time or a time ago such as 2h or 3d",
        ),
        (["--node", "node1", "--at", "2025-13-01"], "--at '2025-13-01': give an ISO 8601 time"),
        (["--node", "node1", "--at", "3 fortnights"], "unknown unit 'fortnights'"),
        ([], "give either a TAG or --node NODE"),
        (["latest_weekly", "--node", "node1"], "give either a TAG or --node NODE"),
        (["sha256:" + "a" * 64], "give a tag (or registry/repository:tag), not a digest"),
        (["bad tag!"], 'TAG: "bad tag!" is not a valid tag'),
    ]:
        result = history(ledger, *args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("imageledger: error: ")
        assert message in result.stderr
        assert "Traceback" not in result.output


def test_a_missing_database_is_one_line_and_exit_1() -> None:
    result = history(url_for("il_missing"), "latest_weekly")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        'imageledger: error: cannot read dashboard.tag_history: database "il_missing" does not'
        " exist (postgresql+asyncpg://postgres@127.0.0.1:5432/il_missing)"
    ]


@pytest.mark.parametrize("command", ["history", "explain", "unpark"])
def test_each_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: main {command} [OPTIONS]")
    assert "--json" in result.stdout
    assert "--database-url" in result.stdout
