"""Log formats: JSON (the default off a terminal), logfmt and console, ours and the libraries'."""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
from collections.abc import Iterator

import pytest
import structlog

from tests.support.cli import ENTRY
from worker.domain.errors import InvalidInputError
from worker.logs import LOG_FORMAT_ENV, LOG_LEVEL_ENV, configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Each test configures logging on its captured stderr; put everything back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def emit() -> None:
    log = structlog.get_logger("imageledger.test")
    log.debug("not shown at info")
    log.info("refresh completed", registry="reg.test", tags=4, reason='say "hi"', ok=True)
    logging.getLogger("some.library").info("a library's info: not shown")
    logging.getLogger("some.library").warning("a library warns %s", "loudly")


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err.splitlines()


def test_json_is_the_default_off_a_terminal_one_object_per_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LOG_FORMAT_ENV, raising=False)
    monkeypatch.delenv(LOG_LEVEL_ENV, raising=False)
    configure_logging("info")
    emit()
    ours, theirs = (json.loads(line) for line in lines(capsys))
    assert list(ours)[:4] == ["timestamp", "level", "event", "logger"]
    assert ours["timestamp"].endswith("Z")
    assert ours == {
        "timestamp": ours["timestamp"],
        "level": "info",
        "event": "refresh completed",
        "logger": "imageledger.test",
        "registry": "reg.test",
        "tags": 4,
        "reason": 'say "hi"',
        "ok": True,
    }
    assert theirs["event"] == "a library warns loudly"
    assert theirs["level"] == "warning"
    assert theirs["logger"] == "some.library"


def test_logfmt_is_key_value_pairs_quoted_where_needed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOG_FORMAT_ENV, "logfmt")
    configure_logging("info")
    emit()
    ours, theirs = (
        dict(pair.split("=", 1) for pair in shlex.split(line)) for line in lines(capsys)
    )
    assert list(ours)[:4] == ["timestamp", "level", "event", "logger"]
    assert ours["event"] == "refresh completed"
    assert ours["tags"] == "4"
    assert ours["reason"] == 'say "hi"'
    assert ours["ok"] == "true"
    assert theirs["event"] == "a library warns loudly"


def test_console_is_for_people(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOG_FORMAT_ENV, "CONSOLE")
    configure_logging("info")
    emit()
    ours, theirs = lines(capsys)
    assert "[info" in ours
    assert "refresh completed" in ours
    assert "tags=4" in ours
    assert "\x1b[" not in ours  # no colours when stderr is not a terminal
    assert "a library warns loudly" in theirs


def test_the_level_comes_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOG_FORMAT_ENV, "json")
    monkeypatch.setenv(LOG_LEVEL_ENV, "debug")
    configure_logging("warning")
    emit()
    events = [json.loads(line)["event"] for line in lines(capsys)]
    assert events == ["not shown at info", "refresh completed", "a library warns loudly"]


def test_configuring_twice_keeps_one_handler(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOG_FORMAT_ENV, "json")
    configure_logging("warning")
    configure_logging("info")
    emit()
    assert len(lines(capsys)) == 2


def test_an_unknown_format_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOG_FORMAT_ENV, "xml")
    with pytest.raises(InvalidInputError, match="must be one of json, logfmt, console"):
        configure_logging()


def test_the_command_refuses_an_unknown_format_with_one_line_and_exit_2() -> None:
    done = subprocess.run(
        [*ENTRY, "menu"],
        capture_output=True,
        text=True,
        env={**os.environ, "IMAGELEDGER_LOG_FORMAT": "xml"},
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "imageledger: error: IMAGELEDGER_LOG_FORMAT must be one of json, logfmt, console,"
        " not 'xml'\n"
    )
