"""Access to the reference implementation's test data (tests/data/nublado, MIT licence)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from worker import converter as wire
from worker.config import Config
from worker.converter import load_config
from worker.domain.images import TagEntry
from worker.domain.nodes import Node
from worker.services.evaluate import DigestKnowledge, Evaluation, evaluate

DATA = Path(__file__).resolve().parent.parent / "data" / "nublado"


def read_json(relative: str) -> Any:
    """Load one conformance JSON file."""
    return json.loads((DATA / relative).read_text())


def config(name: str) -> Config:
    """A reference controller config, ``controller/config-<name>.yaml``."""
    return load_config(DATA / "controller" / f"config-{name}.yaml")


def entries(registry: str, cfg: Config) -> list[TagEntry]:
    """Registry contents, ``registry/<name>.json``."""
    return wire.tag_entries(read_json(f"registry/{registry}.json"), cfg.images.repository)


def nodes(name: str) -> list[Node]:
    """Node caches, ``controller/nodes/<name>.json``."""
    return wire.nodes_from_file(read_json(f"controller/nodes/{name}.json"))


def run(
    config_name: str, registry: str, nodes_name: str, digests: DigestKnowledge
) -> tuple[Config, Evaluation]:
    """Evaluate one conformance case."""
    cfg = config(config_name)
    return cfg, evaluate(cfg, entries(registry, cfg), nodes(nodes_name), digests)


def without_nulls(value: Any) -> Any:
    """Drop null-valued keys recursively.

    The reference omits null fields from the spawner images document (reference 7.2);
    some of its fixtures were written with explicit nulls. Both mean "absent".
    """
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value
