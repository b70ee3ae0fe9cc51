"""The start line's fields: where a command runs, never with whose credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.converter import parse_config
from worker.factory import start_fields, version

CONFIG = parse_config({"images": {"source": {"registry": "reg.test", "repository": "lab/x"}}})


def test_a_worker_names_its_database_and_broker_without_users_or_passwords() -> None:
    fields = start_fields(
        Path("/etc/imageledger/config.yaml"),
        CONFIG,
        database="postgresql+asyncpg://ledger:s3cret@db.internal:6432/ledger_prod",
        amqp="amqps://bot:s3cret@mq.internal/platform",
        prefix="lab",
    )
    assert fields == {
        "version": version(),
        "config": "/etc/imageledger/config.yaml",
        "registry": "reg.test",
        "repository": "lab/x",
        "database": "db.internal:6432/ledger_prod",
        "broker": "mq.internal:5671/platform",
        "broker_prefix": "lab",
    }


def test_a_command_without_a_database_names_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGELEDGER_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    fields = start_fields(Path("c.yaml"), CONFIG, prefix="imageledger")
    assert "database" not in fields
    assert fields["broker"] == "127.0.0.1:5672/"
    assert "guest" not in repr(fields)


def test_an_unreadable_url_is_not_echoed() -> None:
    fields = start_fields(Path("c.yaml"), CONFIG, database="not a url with s3cret")
    assert fields["database"] == "(not a database URL)"
