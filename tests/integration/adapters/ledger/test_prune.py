"""``imageledger prune``: old published outbox rows go, the log and what still matters stay."""

from __future__ import annotations

import asyncio
import json

import asyncpg
from click.testing import CliRunner

from tests.support.database import raw_url, url_for
from worker.cli import main

TARGET, OLD_TARGET = "sha256:" + "a" * 64, "sha256:" + "b" * 64

SETUP = f"""
INSERT INTO ledger.prepull_targets
    (registry, repository, tag, digest, position, reference, display_name, image_type, pull)
VALUES ('r.test', 'lab', 'w_2077_43', '{TARGET}', 0, 'r.test/lab:w_2077_43', 'Weekly 2077_43',
        'Weekly', true);
INSERT INTO ledger.outbox (message_id, routing_key, body, headers, published_at) VALUES
    ('sent-old', 'prepull.requested', '{{}}', '{{}}', now() - interval '40 days'),
    ('sent-recent', 'prepull.requested', '{{}}', '{{}}', now() - interval '1 day'),
    ('unsent-old', 'prepull.requested', '{{}}', '{{}}', NULL),
    ('complete-target', 'prepull.complete', '{{"digest": "{TARGET}"}}', '{{}}',
     now() - interval '40 days'),
    ('complete-gone', 'prepull.complete', '{{"digest": "{OLD_TARGET}"}}', '{{}}',
     now() - interval '40 days');
INSERT INTO ledger.messages (message_id, body_sha256, routing_key, recorded_at) VALUES
    ('folded-old', 'aa', 'node.inventory', now() - interval '40 days'),
    ('folded-recent', 'bb', 'node.inventory', now() - interval '1 day');
"""


async def _ids(url: str, table: str = "outbox") -> list[str]:
    db = await asyncpg.connect(raw_url(url))
    try:
        rows = await db.fetch(f"SELECT message_id FROM ledger.{table} ORDER BY 1")
    finally:
        await db.close()
    return [r[0] for r in rows]


async def _setup(url: str) -> None:
    db = await asyncpg.connect(raw_url(url))
    try:
        await db.execute(SETUP)
    finally:
        await db.close()


def test_prune_keeps_recent_unsent_and_current_completions(database_url: str) -> None:
    asyncio.run(_setup(database_url))
    runner = CliRunner()
    env = {"IMAGELEDGER_DATABASE_URL": database_url}
    dry = runner.invoke(main, ["prune", "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.output
    counted = json.loads(dry.output)
    assert (counted["outbox"], counted["messages"], counted["dry_run"]) == (2, 1, True)
    assert asyncio.run(_ids(database_url)) == [
        "complete-gone", "complete-target", "sent-old", "sent-recent", "unsent-old"
    ]  # fmt: skip
    done = runner.invoke(main, ["prune"], env=env)
    assert done.exit_code == 0, done.output
    assert done.output.startswith("deleted 2 published outbox rows and 1 folded message ids")
    assert asyncio.run(_ids(database_url)) == ["complete-target", "sent-recent", "unsent-old"]
    assert asyncio.run(_ids(database_url, "messages")) == ["folded-recent"]


def test_prune_refuses_a_short_or_bad_age() -> None:
    runner = CliRunner()
    short = runner.invoke(main, ["prune", "--older-than", "2h"])
    assert short.exit_code == 2
    assert short.output.strip() == (
        "imageledger: error: --older-than '2h': must be at least 1d (messages may be redelivered)"
    )
    bad = runner.invoke(main, ["prune", "--older-than", "soon"])
    assert bad.exit_code == 2
    assert bad.output.startswith("imageledger: error: --older-than 'soon': cannot parse duration")
    for age, problem in [
        ("99999999999d", "duration '99999999999d' is too long"),
        ("999999d", "reaches back before the year 1"),
    ]:
        huge = runner.invoke(main, ["prune", "--older-than", age])
        assert huge.exit_code == 2
        assert huge.output == f"imageledger: error: --older-than {age!r}: {problem}\n"


def test_prune_on_a_missing_database_is_one_line() -> None:
    result = CliRunner().invoke(main, ["prune", "--database-url", url_for("il_missing_prune")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        'imageledger: error: cannot prune: database "il_missing_prune" does not exist'
        " (postgresql+asyncpg://postgres@127.0.0.1:5432/il_missing_prune)"
    ]
