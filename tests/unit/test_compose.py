"""compose.yaml agrees with the code: services, health checks, commands, environment names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import yaml

from worker import factory
from worker.adapters.broker.topology import AMQP_URL_ENV
from worker.adapters.ledger.database import DATABASE_URL_ENV
from worker.cli import main
from worker.logs import LOG_LEVEL_ENV

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def known_environment() -> set[str]:
    """Every IMAGELEDGER_* name the code reads: CLI options and module constants."""
    names = {factory.CONFIG_ENV, factory.USERNAME_ENV, factory.PASSWORD_ENV}
    names |= {DATABASE_URL_ENV, AMQP_URL_ENV, LOG_LEVEL_ENV}
    for command in main.commands.values():
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.envvar, str):
                names.add(param.envvar)
    return names


def test_services_and_health_checks() -> None:
    assert set(SERVICES) == {"postgres", "rabbitmq", "registry", "migrate", "worker"}
    for name in ("postgres", "rabbitmq", "registry", "worker"):
        assert "healthcheck" in SERVICES[name], name
    assert SERVICES["rabbitmq"]["image"].endswith("-management")


def test_commands_exist_in_the_cli() -> None:
    assert SERVICES["migrate"]["command"] == ["imageledger", "migrate"]
    assert SERVICES["worker"]["command"] == ["imageledger", "run"]
    assert {"migrate", "run"} <= set(main.commands)


def test_worker_waits_for_its_dependencies() -> None:
    depends = SERVICES["worker"]["depends_on"]
    assert depends["migrate"] == {"condition": "service_completed_successfully"}
    for name in ("postgres", "rabbitmq", "registry"):
        assert depends[name] == {"condition": "service_healthy"}


def test_environment_names_are_the_codes() -> None:
    known = known_environment()
    example = (ROOT / "compose.env.example").read_text()
    used = set(re.findall(r"^(IMAGELEDGER_\w+)=", example, re.MULTILINE))
    for service in SERVICES.values():
        used |= {k for k in service.get("environment", {}) if k.startswith("IMAGELEDGER_")}
    assert used, "compose sets some IMAGELEDGER_ variables"
    assert used <= known, used - known
    assert {DATABASE_URL_ENV, AMQP_URL_ENV} <= used


def test_worker_port_and_health_check_agree() -> None:
    worker = SERVICES["worker"]
    port = worker["environment"]["IMAGELEDGER_PORT"]
    assert f"{port}:{port}" in worker["ports"]
    assert f"127.0.0.1:{port}/healthz" in " ".join(worker["healthcheck"]["test"])


def test_no_secrets_in_the_file() -> None:
    text = (ROOT / "compose.yaml").read_text()
    assert not re.search(r"PASSWORD\s*:\s*\S", text)
    assert not re.search(r"://[^/\s:]+:[^@\s]+@", text)
    assert "compose.env" in (ROOT / ".gitignore").read_text()
