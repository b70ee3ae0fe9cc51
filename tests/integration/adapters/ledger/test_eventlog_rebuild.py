"""Rebuild and the ``migrate`` / ``rebuild`` commands against a real database."""

from __future__ import annotations

import io

from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.migrations.test_eventlog_views import history
from tests.support.database import url_for
from worker.adapters.ledger import migrate
from worker.adapters.ledger.eventlog import EventLog
from worker.adapters.ledger.projections import load_state
from worker.adapters.ledger.rebuild import rebuild
from worker.cli.db import migrate_command, progress_reporter, rebuild_command

INDEXES = text(
    "SELECT indexname, indexdef FROM pg_indexes"
    " WHERE schemaname = 'ledger' AND tablename = 'node_images' ORDER BY indexname"
)


async def test_rebuild_reports_progress_and_restores_the_projections(
    event_log: EventLog, engine: AsyncEngine
) -> None:
    await event_log.append(history())
    async with engine.connect() as connection:
        before = await load_state((await connection.get_raw_connection()).driver_connection)
        indexes = (await connection.execute(INDEXES)).all()
    calls: list[tuple[int, int]] = []
    report = await rebuild(engine, chunk=3, progress=lambda d, t: calls.append((d, t)))
    assert report.events == len(history())
    assert calls[0] == (0, report.events)
    assert calls[-1] == (report.events, report.events)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    async with engine.connect() as connection:
        after = await load_state((await connection.get_raw_connection()).driver_connection)
        assert (await connection.execute(INDEXES)).all() == indexes  # dropped and rebuilt
    assert after == before
    assert len(indexes) == 3


def test_progress_lines_without_a_terminal() -> None:
    out = io.StringIO()
    report = progress_reporter(tty=False, out=out)
    for done in range(0, 1001, 50):
        report(done, 1000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 11
    assert lines[-1].startswith("rebuild: 1,000/1,000 events (100%)")
    bar = io.StringIO()
    progress_reporter(tty=True, out=bar)(500, 1000)
    assert bar.getvalue().startswith("\rrebuild [###############---------------] 500/1,000")


def test_migrate_and_rebuild_commands(database_url: str) -> None:
    runner = CliRunner()
    migrated = runner.invoke(migrate_command, ["--database-url", database_url])
    assert migrated.exit_code == 0, migrated.output
    assert f"is at revision {migrate.revisions()[-1]}" in migrated.output
    rebuilt = runner.invoke(rebuild_command, [], env={"IMAGELEDGER_DATABASE_URL": database_url})
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt the projections from 0 events" in rebuilt.output


def test_a_missing_database_is_one_line_and_no_traceback() -> None:
    result = CliRunner().invoke(migrate_command, ["--database-url", url_for("il_missing")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        'imageledger: error: cannot migrate: database "il_missing" does not exist '
        "(postgresql+asyncpg://postgres@127.0.0.1:5432/il_missing); create it first: "
        "createdb -h 127.0.0.1 -p 5432 -U postgres il_missing"
    ]
