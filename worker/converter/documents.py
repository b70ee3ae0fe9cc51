"""Documents to domain objects: tag listings, nodes files, node rows and configuration files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from worker.config import Config, ConfigError
from worker.converter.core import structure
from worker.converter.inputs import GarImage, NodeFileEntry
from worker.converter.listings import gar_tag_entries
from worker.converter.strict import ValidationError, camel_case
from worker.domain.images import Repository, TagEntry
from worker.domain.nodes import KubeletImage, Node, Taint, cached_digests

__all__ = [
    "load_config",
    "nodes_from_file",
    "parse_config",
    "tag_entries",
    "view_node",
    "yaml_problem",
]

_READ_KEYS = ("images", "dropdown_menu", "lab", "prepull", "queue", "kube", "http")
"""The top-level keys of a configuration that are ours (or the reference's we read)."""
_LAB_KEYS = ("node_selector", "tolerations")
CONTROLLER_CONFIG = ("controller", "config")
"""Where a Phalanx values file of Nublado holds the controller's configuration."""


def tag_entries(data: Any, repository: Repository, what: str = "tags") -> list[TagEntry]:
    """Tags from ``{tag: digest-or-null}`` or an Artifact Registry listing.

    A listing keeps only the entries of ``repository`` (a GAR repository can hold several
    images); each (entry, tag) pair becomes one tag with the entry's digest and size.
    """
    if isinstance(data, dict):
        entries = structure(data, dict[str, str | None], what)
        return [TagEntry(tag, digest) for tag, digest in entries.items()]
    if isinstance(data, list):
        return gar_tag_entries(structure(data, list[GarImage], what), repository)
    raise ValidationError(
        f"invalid {what}: expected an object of tag -> digest or an Artifact Registry listing"
    )


def nodes_from_file(data: Any, what: str = "nodes") -> list[Node]:
    """Nodes from ``{name: {images, labels, taints}}`` (the conformance nodes format)."""
    entries = structure(data, dict[str, NodeFileEntry], what)
    return [
        Node(
            name=name,
            labels=entry.labels,
            taints=entry.taints,
            digests=cached_digests(KubeletImage(i.names, i.size_bytes) for i in entry.images),
        )
        for name, entry in entries.items()
    ]


def view_node(name: str, labels: Any, taints: Any, digests: dict[str, int | None]) -> Node:
    """A node from the ``dashboard.nodes`` row (labels and taints as JSON) and its digests."""
    return Node(
        name=name,
        labels=structure(labels or {}, dict[str, str], f"labels of node {name}"),
        taints=structure(taints or [], tuple[Taint, ...], f"taints of node {name}"),
        digests=digests,
    )


def _pick(data: dict[str, Any], names: tuple[str, ...], where: str) -> dict[str, Any]:
    """The keys of ``names`` given in ``data``, each in camelCase or snake_case (both
    spellings of one key are an error naming it); null values left out."""
    picked = {}
    for name in names:
        given = [key for key in dict.fromkeys((camel_case(name), name)) if key in data]
        if len(given) > 1:
            raise ConfigError(
                f"{where}: {given[1]!r} and {given[0]!r} are the same key: give only one of them"
            )
        if given and data[given[0]] is not None:
            picked[camel_case(name)] = data[given[0]]
    return picked


def _controller_config(data: dict[str, Any], source: str) -> tuple[dict[str, Any], str]:
    """The controller configuration in a document: the document itself, or what a Phalanx
    values file holds under ``controller.config``."""
    if "images" in data:
        return data, source
    outer, inner = CONTROLLER_CONFIG
    controller = data.get(outer)
    config = controller.get(inner) if isinstance(controller, dict) else None
    if isinstance(config, dict) and "images" in config:
        return config, f"{source} ({outer}.{inner})"
    if isinstance(controller, dict):
        raise ConfigError(
            f"{source}: a values file without {outer}.{inner}.images: point --config at the "
            f"Nublado controller's configuration (the {outer}.{inner} key of its Phalanx "
            "values file, with an images section)"
        )
    raise ConfigError(
        f"{source}: missing required section 'images' (a Phalanx values file holds it "
        f"under {outer}.{inner})"
    )


def parse_config(data: Any, *, source: str = "configuration") -> Config:
    """Validate a loaded YAML document (a controller config, our own, or a Phalanx values
    file holding the controller config under ``controller.config``).

    The ``images:``, ``dropdownMenu`` and ``lab.nodeSelector`` / ``lab.tolerations`` keys are
    the reference controller's, accepted as written (camelCase, human durations), so an
    operator can reuse existing values; as the reference's models do, every key may also
    be spelt in snake_case (``num_weeklies``), but not both ways at once. Other top-level
    keys of a controller config and other ``lab`` keys are ignored; inside the sections we
    read, unknown keys are errors.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    data, source = _controller_config(data, source)
    picked = _pick(data, _READ_KEYS, source)
    if isinstance(picked.get("lab"), dict):
        picked["lab"] = _pick(picked["lab"], _LAB_KEYS, f"{source}: lab")
    try:
        return structure(picked, Config, what=source, camel=True)
    except ValidationError as exc:
        raise ConfigError(str(exc)) from exc


def load_config(path: Path) -> Config:
    """Read and validate a YAML configuration file."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)") from exc
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
