"""Configuration: attrs classes loaded from YAML and the environment through the converter.

The ``images:``, ``dropdownMenu`` and ``lab.nodeSelector`` / ``lab.tolerations`` keys are
the reference controller's, accepted as written (camelCase, human durations), so an
operator can reuse existing values. Other top-level keys of a controller config and other
``lab`` keys are ignored; inside the sections we read, unknown keys are errors.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
import yaml
from attrs import field, frozen, validators

from worker import converter
from worker.domain.images import Repository
from worker.domain.nodes import Toleration
from worker.domain.policy import DropdownPolicy, ImageFilter, PrepullPolicy
from worker.domain.refresh import RemovalLimit

__all__ = [
    "Config",
    "ConfigError",
    "DockerSource",
    "GoogleSource",
    "ImagesConfig",
    "LabConfig",
    "PrepullConfig",
    "QueueConfig",
    "load_config",
    "parse_config",
    "yaml_problem",
]


class ConfigError(ValueError):
    """A configuration file that cannot be read or does not validate."""


@frozen
class DockerSource:
    """A Docker / OCI registry reached with the registry HTTP API v2."""

    repository: str
    registry: str = "docker.io"
    type: Literal["docker"] = "docker"
    insecure: bool = False
    """Plain http (for a local or test registry); the reference always uses https."""
    ca_bundle: str | None = None
    """A CA bundle (PEM) to verify the registry's certificate with."""

    @property
    def location(self) -> Repository:
        """Registry host and repository path."""
        return Repository(self.registry, self.repository)


@frozen
class GoogleSource:
    """A Google Artifact Registry image (reference 3.2)."""

    location: str
    project_id: str
    repository: str
    image: str
    type: Literal["google"] = "google"

    @property
    def registry(self) -> str:
        """The registry host derived from the location."""
        return f"{self.location}-docker.pkg.dev"

    @property
    def location_path(self) -> Repository:
        """Registry host and Docker-style repository path."""
        return Repository(self.registry, f"{self.project_id}/{self.repository}/{self.image}")


Source = DockerSource | GoogleSource


def _positive(_: object, attribute: attrs.Attribute[Any], value: timedelta) -> None:
    if value <= timedelta(0):
        raise ValueError(f"{attribute.name} must be positive")


@frozen
class ImagesConfig:
    """The reference's ``images:`` section plus our own keys."""

    source: Source
    refresh_interval: timedelta = field(default=timedelta(minutes=5), validator=_positive)
    prepull_timeout: timedelta = field(default=timedelta(minutes=10), validator=_positive)
    recommended_tag: str = "recommended"
    num_releases: int = field(default=1, validator=validators.ge(0))
    num_weeklies: int = field(default=2, validator=validators.ge(0))
    num_dailies: int = field(default=3, validator=validators.ge(0))
    cycle: int | None = None
    pin: tuple[str, ...] = ()
    alias_tags: tuple[str, ...] = ()
    docker_credentials_path: str | None = None
    resolve_budget: int = field(default=100, validator=validators.ge(0))
    node_status_max_images: int = field(default=50, validator=validators.ge(1))
    max_removals_unconfirmed: RemovalLimit = RemovalLimit()

    @property
    def repository(self) -> Repository:
        """Where the images live."""
        src = self.source
        return src.location if isinstance(src, DockerSource) else src.location_path

    def policy(self) -> PrepullPolicy:
        """The prepull policy. Google sources ignore ``aliasTags``, as the reference does."""
        aliases = self.alias_tags if isinstance(self.source, DockerSource) else ()
        return PrepullPolicy(
            recommended_tag=self.recommended_tag,
            num_releases=self.num_releases,
            num_weeklies=self.num_weeklies,
            num_dailies=self.num_dailies,
            cycle=self.cycle,
            pin=self.pin,
            alias_tags=aliases,
        )


@frozen
class LabConfig:
    """The parts of the reference's ``lab:`` section that decide node eligibility."""

    node_selector: dict[str, str] = field(factory=dict)
    tolerations: tuple[Toleration, ...] = ()


@frozen
class PrepullConfig:
    """Our own ``prepull:`` section: attempts before parking, in-flight caps, back-off,
    and how often the worker re-plans (timeouts, back-off) when no message arrives."""

    max_attempts: int = field(default=5, validator=validators.ge(1))
    in_flight_per_node: int = field(default=1, validator=validators.ge(1))
    in_flight_total: int = field(default=100, validator=validators.ge(1))
    backoff: timedelta = field(default=timedelta(minutes=1), validator=_positive)
    max_backoff: timedelta = field(default=timedelta(hours=1), validator=_positive)
    plan_interval: timedelta = field(default=timedelta(seconds=15), validator=_positive)


@frozen
class QueueConfig:
    """Our own ``queue:`` section: how the worker batches and retries RabbitMQ messages."""

    batch_size: int = field(default=500, validator=validators.ge(1))
    """Messages folded in one transaction at most."""
    batch_timeout: timedelta = field(default=timedelta(milliseconds=50), validator=_positive)
    """How long a batch waits for more messages after its first one."""
    prefetch: int = field(default=1000, validator=validators.ge(1))
    max_attempts: int = field(default=5, validator=validators.ge(1))
    """Handler attempts per message (bad data or a bug) before it is dead-lettered."""
    retry_delay: timedelta = field(default=timedelta(seconds=2), validator=_positive)
    """Delay before the second attempt; doubles per attempt up to ``max_retry_delay``."""
    max_retry_delay: timedelta = field(default=timedelta(minutes=5), validator=_positive)
    delivery_limit: int = field(default=20, validator=validators.ge(1))
    """Broker-side cap on redeliveries after consumer crashes; then the broker dead-letters."""


@frozen
class Config:
    """The whole configuration."""

    images: ImagesConfig
    dropdown_menu: DropdownPolicy = DropdownPolicy()
    lab: LabConfig = LabConfig()
    prepull: PrepullConfig = PrepullConfig()
    queue: QueueConfig = QueueConfig()


_READ_KEYS = {
    "images": "images",
    "dropdownMenu": "dropdown_menu",
    "lab": "lab",
    "prepull": "prepull",
    "queue": "queue",
}
_LAB_KEYS = ("nodeSelector", "tolerations")


def _cutoff_date(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise TypeError(f"expected a date or timestamp, got {type(value).__name__}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _source(conv: cattrs.Converter) -> Any:
    def structure(value: Any, _: type) -> Source:
        if not isinstance(value, dict):
            raise TypeError("expected a mapping with a 'type' key")
        kind = value.get("type", "docker")
        if kind == "docker":
            return conv.structure(value, DockerSource)
        if kind == "google":
            return conv.structure(value, GoogleSource)
        raise ValueError(f"unknown source type {kind!r} (expected 'docker' or 'google')")

    return structure


def _register_hooks() -> None:
    """Teach the converter our YAML: camelCase keys, the source union, cutoff dates."""
    converter.use_camel_case(
        DockerSource, GoogleSource, Toleration, ImageFilter, DropdownPolicy, ImagesConfig,
        LabConfig, PrepullConfig, QueueConfig, Config,
    )  # fmt: skip
    conv = converter.config_converter
    conv.register_structure_hook(Source, _source(conv))
    conv.register_unstructure_hook(Source, lambda s: conv.unstructure(s, type(s)))
    conv.register_structure_hook(
        ImageFilter, _with_cutoff_date(conv.get_structure_hook(ImageFilter))
    )


def _with_cutoff_date(hook: Any) -> Any:
    def structure(value: Any, cls: type) -> ImageFilter:
        if isinstance(value, dict) and "cutoffDate" in value:
            value = {**value, "cutoffDate": _cutoff_date(value["cutoffDate"], datetime)}
        return hook(value, cls)  # type: ignore[no-any-return]

    return structure


def parse_config(data: Any, *, source: str = "configuration") -> Config:
    """Validate a loaded YAML document (a controller config or our own)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    if "images" not in data:
        raise ConfigError(f"{source}: missing required section 'images'")
    picked = {key: data[key] for key in _READ_KEYS if key in data and data[key] is not None}
    if isinstance(picked.get("lab"), dict):
        picked["lab"] = {k: v for k, v in picked["lab"].items() if k in _LAB_KEYS}
    try:
        return converter.structure(picked, Config, what=source, camel=True)
    except converter.ValidationError as exc:
        raise ConfigError(str(exc)) from exc


def load_config(path: Path) -> Config:
    """Read and validate a YAML configuration file."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(exc)}") from exc
    return parse_config(data, source=str(path))


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML parse error on one line: the problem and where (line and column from 1)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{exc.problem}{where}"
    return " ".join(str(exc).split())


_register_hooks()
