"""Every ``imageledger`` subcommand fails with one error line and its exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.support.cli import ENTRY
from tests.support.database import url_for
from tests.support.net import free_port
from tests.support.worker_process import write_config

BAD_INPUT = 2
FAILURE = 1
SECRET = "s3cret-pw"


def imageledger(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The real entry point in a child process: exit code, stdout, stderr."""
    done = subprocess.run(
        [*ENTRY, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "IMAGELEDGER_LOG_LEVEL": "warning", **(env or {})},
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def one_error_line(stderr: str) -> str:
    """The single line of stderr, checked to be our error shape and no traceback."""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("imageledger: error: ")
    return lines[0].removeprefix("imageledger: error: ")


@pytest.fixture
def configs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Bad configuration files and the message each must give."""
    missing = tmp_path / "missing.yaml"
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("images: [unclosed\n")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("images:\n  source: {type: docker, repository: a/b}\n  bogus: 1\n")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01 not text")
    selector = tmp_path / "selector.yaml"
    selector.write_text(
        "images:\n  source: {type: docker, repository: a/b}\n"
        "lab:\n  nodeSelector: {zz: 1, kubernetes.io/hostname: [a]}\n"
    )
    escape = tmp_path / "escape.yaml"
    escape.write_text("images:\n  source: {type: docker, repository: ../../x}\n")
    return {
        "missing": (missing, f"{missing}: cannot read: No such file or directory"),
        "invalid": (
            invalid,
            f"{invalid}: not valid YAML: expected ',' or ']', but got '<stream end>' "
            "at line 2, column 1",
        ),
        "unknown": (unknown, f"invalid {unknown}: extra fields found (bogus) @ $.images"),
        "binary": (binary, f"{binary}: not UTF-8 text (byte 0 cannot be decoded)"),
        "selector": (
            selector,
            f"invalid {selector}: expected a string, got int @ $.lab.nodeSelector['zz'];"
            " expected a string, got list @ $.lab.nodeSelector['kubernetes.io/hostname']",
        ),
        "escape": (
            escape,
            f"invalid {escape}: repository: '../../x' is not a repository path (lowercase"
            " components such as 'lsstsqre/sciplat-lab', at most 255 characters)"
            " @ $.images.source",
        ),
    }


@pytest.mark.parametrize("which", ["missing", "invalid", "unknown", "binary", "selector", "escape"])
@pytest.mark.parametrize(
    "command", [("evaluate", "--tags", "tags.json"), ("refresh", "--now"), ("run",)]
)
def test_a_bad_config_file_is_bad_input(
    configs: dict[str, tuple[Path, str]], which: str, command: tuple[str, ...], tmp_path: Path
) -> None:
    path, message = configs[which]
    (tmp_path / "tags.json").write_text("{}")
    args = [a if a != "tags.json" else str(tmp_path / a) for a in command]
    code, out, err = imageledger(*args, "--config", path, env={"IMAGELEDGER_CONFIG": ""})
    assert (code, out) == (BAD_INPUT, "")
    assert one_error_line(err) == message


def test_no_config_at_all_is_bad_input() -> None:
    code, _, err = imageledger("refresh", "--now", env={"IMAGELEDGER_CONFIG": ""})
    assert code == BAD_INPUT
    assert one_error_line(err) == "no configuration file: pass --config or set IMAGELEDGER_CONFIG"


@pytest.mark.parametrize(
    ("command", "doing"),
    [
        (("migrate",), "cannot migrate: "),
        (("rebuild",), ""),
        (("menu",), "cannot read dashboard.menu: "),
        (("status",), "cannot read dashboard.prepull_status: "),
        (("refresh", "--now"), ""),
    ],
)
def test_a_missing_database_is_one_line(
    command: tuple[str, ...], doing: str, tmp_path: Path
) -> None:
    name = f"il_missing_{uuid.uuid4().hex[:8]}"
    url = url_for(name)
    env = {"IMAGELEDGER_DATABASE_URL": url, "IMAGELEDGER_CONFIG": str(write_config(tmp_path / "c"))}
    code, out, err = imageledger(*command, env=env)
    assert (code, out) == (FAILURE, "")
    message = one_error_line(err)
    assert message.startswith(doing)
    missing = f'database "{name}" does not exist ({url})'
    if command == ("migrate",):  # the command that would create the schema says what to do
        missing += f"; create it first: createdb -h 127.0.0.1 -p 5432 -U postgres {name}"
    assert message.endswith(missing)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "--port", "99999"),
         "Invalid value for '--port': 99999 is not in the range 0<=x<=65535."),
        (("prune", "--older-than", "99999999999d"),
         "--older-than '99999999999d': duration '99999999999d' is too long"),
        (("status", "--no-such-option"), "No such option '--no-such-option'."),
    ],
)  # fmt: skip
def test_a_bad_option_value_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    code, out, err = imageledger(*args)
    assert (code, out) == (BAD_INPUT, "")
    assert one_error_line(err) == message


def test_a_blank_http_token_is_bad_input_not_an_open_api(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml")
    code, out, err = imageledger(
        "run", "--config", config, "--port", "0", env={"IMAGELEDGER_HTTP_TOKEN": "  "}
    )
    assert (code, out) == (BAD_INPUT, "")
    assert one_error_line(err) == (
        "IMAGELEDGER_HTTP_TOKEN is set but blank; unset it to serve without a token"
    )


def test_a_refresh_that_cannot_list_the_registry_exits_4(database_url: str, tmp_path: Path) -> None:
    env = {
        "IMAGELEDGER_DATABASE_URL": database_url,
        "IMAGELEDGER_CONFIG": str(write_config(tmp_path / "c")),
    }
    code, out, err = imageledger("refresh", "--now", env=env)
    assert code == 4
    assert out.startswith("refresh of 127.0.0.1:9/lsstsqre/sciplat-lab FAILED: connection failed")
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (
        "imageledger: error: the registry could not be listed; the last known state stays"
    )


@pytest.mark.parametrize("option", ["yesterday", "2077-13-01", "2077-01-01T25:00"])
def test_a_bad_now_timestamp_is_bad_input(option: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml")
    tags = tmp_path / "tags.json"
    tags.write_text("{}")
    code, out, err = imageledger("evaluate", "--config", config, "--tags", tags, "--now", option)
    assert (code, out) == (BAD_INPUT, "")
    assert one_error_line(err) == f"--now {option!r}: not an ISO 8601 timestamp"


def closed_broker(vhost: str = "") -> tuple[str, str]:
    """An AMQP URL with a password on a port nobody listens on, and how it is shown."""
    port = free_port()
    return (
        f"amqp://guest:{SECRET}@127.0.0.1:{port}/{vhost}",
        f"amqp://guest:***@127.0.0.1:{port}/{vhost}",
    )


def refused(url: str) -> str:
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    return f"[Errno 111] Connect call failed ('127.0.0.1', {port})"


def test_refresh_with_an_unreachable_broker_is_one_line_without_the_password() -> None:
    url, shown = closed_broker()
    code, out, err = imageledger("refresh", "--amqp-url", url)
    assert (code, out) == (FAILURE, "")
    assert one_error_line(err) == (
        f"cannot reach RabbitMQ at {shown}: {refused(url)}; the refresh was not requested"
    )
    assert SECRET not in err


@pytest.mark.parametrize("command", [("list",), ("replay", "--all"), ("purge", "--all", "--yes")])
def test_dead_letters_with_an_unreachable_broker_is_one_line(command: tuple[str, ...]) -> None:
    url, shown = closed_broker("ops")
    code, out, err = imageledger("dead-letters", *command, env={"IMAGELEDGER_AMQP_URL": url})
    assert (code, out) == (FAILURE, "")
    assert one_error_line(err) == f"cannot reach RabbitMQ at {shown}: {refused(url)}"
    assert SECRET not in err


def test_run_retries_an_unreachable_broker_with_logs_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    """``run`` retries the first connection with back-off (10 attempts, then one error
    line, exit 1); SIGTERM meanwhile stops it at once with exit 0."""
    url, shown = closed_broker()
    config = write_config(tmp_path / "config.yaml")
    log = tmp_path / "run.log"
    args = ["run", "--config", config, "--amqp-url", url, "--port", "0", "--no-schedule"]
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*ENTRY, *map(str, args)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "IMAGELEDGER_DATABASE_URL": url_for("il_unused")},
        )
        try:
            deadline = time.monotonic() + 30
            while log.read_text().count("broker unreachable; retrying") < 2:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = log.read_text()
    assert code == 0, text
    assert time.monotonic() - started < 5
    assert "Traceback" not in text
    assert SECRET not in text
    events = [json.loads(line) for line in text.splitlines()]  # JSON off a terminal
    retries = [e for e in events if e["event"] == "broker unreachable; retrying"]
    assert retries[0]["url"] == shown
    assert [e["attempt"] for e in retries[:2]] == [1, 2]
    assert "worker stopped before RabbitMQ was reached" in [e["event"] for e in events]
