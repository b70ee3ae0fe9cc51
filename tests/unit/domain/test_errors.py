"""One error family: every error class of ``worker`` descends from ImageLedgerError and says
how the HTTP API and the command show it; the consumer holds batches for transient ones."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import worker
from worker.adapters.broker import BrokerError, BrokerUnavailableError
from worker.adapters.ledger import LedgerError, TransientLedgerError
from worker.adapters.ledger.database import DatabaseMissingError, LedgerConflictError
from worker.adapters.ledger.migrate import MigrationError
from worker.adapters.registry import RegistryError
from worker.adapters.registry.errors import RegistryCredentialsError, RegistryTimeoutError
from worker.config import ConfigError
from worker.consumer import TRANSIENT
from worker.converter import ValidationError
from worker.domain.errors import (
    AmbiguousImageError,
    ImageLedgerError,
    InvalidDockerReferenceError,
    InvalidImageClassError,
    MessageRejected,
    RegistryUnavailableError,
    UnknownImageError,
    UnknownNodeError,
)
from worker.domain.references import InvalidReferenceError

SHOWN_BY_THE_CLI = {"worker.cli.common.CommandError"}
"""click's exception that prints one of ours (its message and exit status come from it)."""


def _error_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in pkgutil.walk_packages(worker.__path__, "worker."):
        loaded = importlib.import_module(module.name)
        for name, value in vars(loaded).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == loaded.__name__
                and not name.startswith("_")
            ):
                found[f"{value.__module__}.{name}"] = value
    return [cls for key, cls in sorted(found.items()) if key not in SHOWN_BY_THE_CLI]


def test_every_error_of_ours_is_an_image_ledger_error() -> None:
    classes = _error_classes()
    assert len(classes) > 30  # the walk found the adapters' errors too
    assert [c.__qualname__ for c in classes if not issubclass(c, ImageLedgerError)] == []


@pytest.mark.parametrize(
    ("error", "status", "code", "exit_code"),
    [
        (InvalidDockerReferenceError, 422, "invalid_docker_reference", 2),
        (InvalidReferenceError, 422, "invalid_docker_reference", 2),
        (InvalidImageClassError, 422, "enum", 2),
        (AmbiguousImageError, 422, "invalid_input", 2),
        (UnknownImageError, 400, "unknown_image", 3),
        (UnknownNodeError, 404, "not_found", 3),
        (RegistryUnavailableError, 502, "registry_error", 4),
        (RegistryTimeoutError, 502, "registry_error", 4),
        (RegistryCredentialsError, 502, "registry_error", 2),
        (LedgerError, 503, "database_unavailable", 1),
        (DatabaseMissingError, 503, "database_unavailable", 1),
        (MigrationError, 503, "database_unavailable", 1),
        (ConfigError, 422, "invalid_input", 2),
        (ValidationError, 422, "invalid_input", 2),
        (BrokerError, 500, "internal_error", 1),
    ],
)
def test_each_error_says_how_it_is_shown(
    error: type[ImageLedgerError], status: int, code: str, exit_code: int
) -> None:
    assert (error.http_status, error.error_code, error.exit_code) == (status, code, exit_code)


def test_the_consumer_holds_batches_for_what_passes_only() -> None:
    def held(error: BaseException) -> bool:
        return isinstance(error, TRANSIENT)

    assert held(DatabaseMissingError("no database"))
    assert held(LedgerConflictError("serialization failure"))
    assert held(BrokerUnavailableError("no broker"))
    assert isinstance(DatabaseMissingError("x"), TransientLedgerError)
    for permanent in (
        LedgerError("schema missing"),
        MigrationError("no migrations"),
        MessageRejected("bad body"),
        RegistryError("refused"),
        BrokerError("queue exists with other arguments"),
    ):
        assert not held(permanent), permanent
