"""``copy_shared``: settings built from a configuration section carry every knob both name."""

from __future__ import annotations

from datetime import timedelta

import pytest
from attrs import frozen

from worker.config import PrepullConfig, QueueConfig
from worker.converter import parse_config
from worker.domain.copying import copy_shared
from worker.domain.prepull import PrepullSettings
from worker.factory import broker_settings
from worker.services.prepull import prepull_settings


@frozen
class Section:
    a: int
    b: str
    only_here: float = 1.5


@frozen
class Settings:
    a: int
    b: str = "default"
    c: int = 7


def test_shared_fields_are_copied_given_ones_win_others_keep_defaults() -> None:
    assert copy_shared(Settings, Section(1, "x")) == Settings(1, "x", 7)
    assert copy_shared(Settings, Section(1, "x"), b="given", c=3) == Settings(1, "given", 3)


@frozen
class Elsewhere:
    b: str


def test_a_field_neither_gives_nor_defaults_is_an_error() -> None:
    with pytest.raises(TypeError, match="'a'"):
        copy_shared(Settings, Elsewhere("x"))


def test_the_worker_settings_carry_their_sections() -> None:
    data = {
        "images": {"source": {"type": "docker", "registry": "r.example", "repository": "a/b"}},
        "queue": {"batchSize": 7, "prefetch": 9, "deliveryLimit": 3, "retryDelay": "5s"},
        "prepull": {"maxAttempts": 2, "inFlightTotal": 11, "backoff": "30s"},
    }
    config = parse_config(data)
    broker = broker_settings(config, "amqp://h/", "p")
    assert (broker.batch_size, broker.prefetch, broker.delivery_limit) == (7, 9, 3)
    assert broker.retry_delay == timedelta(seconds=5)
    assert (broker.url, broker.prefix) == ("amqp://h/", "p")
    settings = prepull_settings(config)
    assert settings == PrepullSettings(
        max_attempts=2,
        in_flight_per_node=PrepullConfig().in_flight_per_node,
        in_flight_total=11,
        backoff=timedelta(seconds=30),
        max_backoff=PrepullConfig().max_backoff,
        timeout=config.images.prepull_timeout,
    )
    assert broker.max_retry_delay == QueueConfig().max_retry_delay
