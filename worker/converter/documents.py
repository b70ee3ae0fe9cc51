"""Documents to domain objects: tag listings, nodes files, node rows and configuration files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from worker.config import Config, ConfigError
from worker.converter.core import structure
from worker.converter.inputs import GarImage, NodeFileEntry
from worker.converter.strict import ValidationError
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

_READ_KEYS = ("images", "dropdownMenu", "lab", "prepull", "queue", "http")
"""The top-level keys of a configuration that are ours (or the reference's we read)."""
_LAB_KEYS = ("nodeSelector", "tolerations")


def tag_entries(data: Any, repository: Repository, what: str = "tags") -> list[TagEntry]:
    """Tags from ``{tag: digest-or-null}`` or an Artifact Registry listing.

    A listing keeps only the entries of ``repository`` (a GAR repository can hold several
    images); each (entry, tag) pair becomes one tag with the entry's digest and size.
    """
    if isinstance(data, dict):
        entries = structure(data, dict[str, str | None], what)
        return [TagEntry(tag, digest) for tag, digest in entries.items()]
    if isinstance(data, list):
        listing = structure(data, list[GarImage], what)
        out: list[TagEntry] = []
        for item in listing:
            name, _, digest = item.uri.partition("@")
            if name != str(repository) or not digest:
                continue
            out.extend(TagEntry(tag, digest, item.image_size_bytes) for tag in item.tags)
        return out
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


def parse_config(data: Any, *, source: str = "configuration") -> Config:
    """Validate a loaded YAML document (a controller config or our own).

    The ``images:``, ``dropdownMenu`` and ``lab.nodeSelector`` / ``lab.tolerations`` keys are
    the reference controller's, accepted as written (camelCase, human durations), so an
    operator can reuse existing values. Other top-level keys of a controller config and
    other ``lab`` keys are ignored; inside the sections we read, unknown keys are errors.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    if "images" not in data:
        raise ConfigError(f"{source}: missing required section 'images'")
    picked = {key: data[key] for key in _READ_KEYS if key in data and data[key] is not None}
    if isinstance(picked.get("lab"), dict):
        picked["lab"] = {k: v for k, v in picked["lab"].items() if k in _LAB_KEYS}
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
