"""Configuration: the attrs classes of the YAML file (read by ``worker.converter``).

The ``images:``, ``dropdownMenu`` and ``lab.nodeSelector`` / ``lab.tolerations`` sections
are the reference controller's, the others (``prepull``, ``queue``, ``kube``) ours;
``worker.converter.parse_config`` and ``load_config`` read them (camelCase keys, human
durations) into these classes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs
from attrs import field, frozen, validators

from worker.domain.copying import copy_shared
from worker.domain.errors import InvalidInputError
from worker.domain.field_rules import FOLD_SKEW
from worker.domain.images import Repository
from worker.domain.nodes import Toleration
from worker.domain.policy import DropdownPolicy, PrepullPolicy
from worker.domain.references import registry_problem, repository_problem
from worker.domain.refresh import RemovalLimit

__all__ = [
    "ARTIFACT_REGISTRY_API",
    "Config",
    "ConfigError",
    "DockerSource",
    "GoogleSource",
    "HttpConfig",
    "ImagesConfig",
    "KubeConfig",
    "LabConfig",
    "PrepullConfig",
    "QueueConfig",
    "Source",
]

ARTIFACT_REGISTRY_API = "https://artifactregistry.googleapis.com"
"""The Artifact Registry REST API a Google source lists images with, unless configured."""


class ConfigError(InvalidInputError, ValueError):
    """A configuration file that cannot be read or does not validate."""


def _repository(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    problem = repository_problem(value)
    if problem is not None:
        raise ValueError(f"{attribute.name}: {problem}")


def _http_url(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.netloc or url.path.strip("/"):
        raise ValueError(f"{attribute.name}: expected http(s)://host[:port], got {value!r}")


def _registry(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    problem = registry_problem(value)
    if problem is not None:
        raise ValueError(f"{attribute.name}: {problem}")


@frozen
class DockerSource:
    """A Docker / OCI registry reached with the registry HTTP API v2."""

    repository: str = field(validator=_repository)
    registry: str = field(default="docker.io", validator=_registry)
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
    endpoint: str = field(default=ARTIFACT_REGISTRY_API, validator=_http_url)
    """The Artifact Registry REST API (a stand-in's URL in tests and the demo)."""
    docker_endpoint: str | None = field(default=None, validator=validators.optional(_http_url))
    """Where the Docker v2 API of the images is reached for HEADs (resolving a tag the listing
    does not know); None: ``https://{location}-docker.pkg.dev``. Images are named by that
    host whatever this says."""

    def __attrs_post_init__(self) -> None:
        problem = registry_problem(self.registry)
        if problem is None:
            problem = repository_problem(self.location_path.repository)
        if problem is not None:
            raise ValueError(f"location, projectId, repository and image: {problem}")

    @property
    def registry(self) -> str:
        """The registry host derived from the location."""
        return f"{self.location}-docker.pkg.dev"

    @property
    def docker_host(self) -> tuple[str, bool]:
        """The host (and port) HEADs go to, and whether over plain http."""
        if self.docker_endpoint is None:
            return self.registry, False
        url = urlsplit(self.docker_endpoint)
        return url.netloc, url.scheme == "http"

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
        return copy_shared(PrepullPolicy, self, alias_tags=aliases)


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
    max_clock_skew: timedelta = field(default=FOLD_SKEW, validator=_positive)
    """How far ahead of the worker's clock a message's time may be; a later one is
    dead-lettered on arrival. (The fold never counts a stored event as newer than its
    recording plus ``FOLD_SKEW``, the default, whatever this admits.)"""


@frozen
class HttpConfig:
    """Our own ``http:`` section: what the HTTP API may spend of the registry."""

    resolve_cache_ttl: timedelta = field(default=timedelta(seconds=30), validator=_positive)
    """How long a fresh HEAD's answer stands for the same tag."""
    resolve_heads_per_minute: int = field(default=60, validator=validators.ge(1))
    """Fresh HEADs for resolving per minute at most (a burst of as many); then 429."""


@frozen
class KubeConfig:
    """Our own ``kube:`` section, read by the bridge (``imageledger kube``) only."""

    namespace: str = field(default="imageledger", validator=validators.min_len(1))
    """Where prepull pods run: the namespace of the bridge's Role."""
    inventory_interval: timedelta = field(default=timedelta(minutes=5), validator=_positive)
    """Every node is reported again this often (jittered), changed or not."""
    image_pull_secret: str | None = None
    """A Secret in ``namespace`` named on every prepull pod (``imagePullSecrets``)."""
    kubeconfig: str | None = None
    """A kubeconfig file; none: the pod's service account (``--kubeconfig`` and
    ``KUBECONFIG`` win)."""
    retry_delay: timedelta = field(default=timedelta(seconds=1), validator=_positive)
    """Wait after a failed API request (server away, 403), doubling up to ``max_retry_delay``."""
    max_retry_delay: timedelta = field(default=timedelta(seconds=30), validator=_positive)


@frozen
class Config:
    """The whole configuration."""

    images: ImagesConfig
    dropdown_menu: DropdownPolicy = DropdownPolicy()
    lab: LabConfig = LabConfig()
    prepull: PrepullConfig = PrepullConfig()
    queue: QueueConfig = QueueConfig()
    kube: KubeConfig = KubeConfig()
    http: HttpConfig = HttpConfig()
