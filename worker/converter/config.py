"""How the configuration's YAML becomes ``worker.config`` classes: camelCase keys as the
reference writes them (or their snake_case spelling, as its models also accept), the source
union, cutoff dates as dates or timestamps."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import cattrs

from worker.config import (
    Config,
    DockerSource,
    GoogleSource,
    HttpConfig,
    ImagesConfig,
    KubeConfig,
    LabConfig,
    PrepullConfig,
    QueueConfig,
    Source,
)
from worker.converter.strict import one_spelling, register_camel_case
from worker.domain.nodes import Toleration
from worker.domain.policy import DropdownPolicy, ImageFilter
from worker.domain.refresh import RemovalLimit

__all__ = ["CONFIG_CLASSES", "register_config"]

CONFIG_CLASSES = (
    DockerSource, GoogleSource, Toleration, ImageFilter, DropdownPolicy, ImagesConfig,
    LabConfig, PrepullConfig, QueueConfig, KubeConfig, HttpConfig, Config,
)  # fmt: skip
"""The classes read with camelCase (or snake_case) keys and written with camelCase keys."""


def _cutoff_date(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise TypeError(f"expected a date or timestamp, got {type(value).__name__}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _removal_limit(value: Any, _: type) -> RemovalLimit:
    """``images.maxRemovalsUnconfirmed``: a number of tags, or a share such as ``10%``."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return RemovalLimit(count=value)
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = float(value[:-1])
        except ValueError:
            percent = -1.0
        if 0 <= percent <= 100:
            return RemovalLimit(percent=percent)
    raise ValueError(f"expected a number of tags or a percentage such as '10%', got {value!r}")


def register_config(conv: cattrs.Converter) -> None:
    """Teach a converter our YAML: camelCase keys, the source union, cutoff dates."""
    register_camel_case(conv, CONFIG_CLASSES)

    def structure_source(value: Any, _: type) -> Source:
        if not isinstance(value, dict):
            raise TypeError("expected a mapping with a 'type' key")
        kind = value.get("type", "docker")
        if kind == "docker":
            return conv.structure(value, DockerSource)
        if kind == "google":
            return conv.structure(value, GoogleSource)
        raise ValueError(f"unknown source type {kind!r} (expected 'docker' or 'google')")

    conv.register_structure_hook(Source, structure_source)
    conv.register_unstructure_hook(Source, lambda s: conv.unstructure(s, type(s)))
    image_filter = conv.get_structure_hook(ImageFilter)

    def structure_filter(value: Any, cls: type) -> ImageFilter:
        value = one_spelling(value, ["cutoff_date"])
        if isinstance(value, dict) and "cutoffDate" in value:
            value = {**value, "cutoffDate": _cutoff_date(value["cutoffDate"])}
        return image_filter(value, cls)  # type: ignore[no-any-return]

    conv.register_structure_hook(ImageFilter, structure_filter)
    conv.register_structure_hook(RemovalLimit, _removal_limit)
