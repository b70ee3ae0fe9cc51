"""Output shapes: the reference's JSON documents (spawner images, menu, prepuller status,
resolved image) and the ``evaluate`` tag listing, built from domain values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from worker.config import ImagesConfig
from worker.domain.images import Image
from worker.domain.menu import (
    MenuImages,
    NodeImage,
    NodeStatus,
    PrepullerImages,
    SpawnerImage,
    SpawnerImages,
)
from worker.domain.spawner import ResolvedImage

__all__ = [
    "menu_json",
    "prepuller_config_json",
    "prepuller_status_json",
    "resolved_image_json",
    "spawner_image_json",
    "spawner_images_json",
    "tag_json",
]


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def spawner_image_json(image: SpawnerImage | ResolvedImage) -> dict[str, Any]:
    """The reference's ``PrepulledImage`` (null fields omitted)."""
    return _drop_none(
        {
            "reference": image.reference,
            "tag": image.tag,
            "name": image.name,
            "digest": image.digest,
            "aliases": list(image.aliases),
            "prepulled": image.prepulled,
        }
    )


def spawner_images_json(images: SpawnerImages) -> dict[str, Any]:
    """``GET /spawner/v1/images`` (reference 7.2; null fields omitted)."""
    named = {
        "recommended": images.recommended,
        "latest_weekly": images.latest_weekly,
        "latest_daily": images.latest_daily,
        "latest_release": images.latest_release,
    }
    out = {k: spawner_image_json(v) for k, v in named.items() if v is not None}
    return {**out, "all": [spawner_image_json(i) for i in images.all]}


def menu_json(menu: MenuImages) -> dict[str, Any]:
    """The spawner menu: radio ``menu`` entries and ``dropdown`` entries."""
    return {
        "menu": [{"reference": e.reference, "name": e.name} for e in menu.menu],
        "dropdown": [{"reference": e.reference, "name": e.name} for e in menu.dropdown],
    }


def prepuller_config_json(images: ImagesConfig) -> dict[str, Any]:
    """The reference's ``PrepullerOptions`` in snake_case (credentials path omitted)."""
    source = images.source
    if source.type == "google":
        source_json: dict[str, Any] = {
            "type": "google",
            "location": source.location,
            "project_id": source.project_id,
            "repository": source.repository,
            "image": source.image,
        }
    else:
        source_json = {
            "type": "docker",
            "registry": source.registry,
            "repository": source.repository,
        }
    return {
        "source": source_json,
        "refresh_interval": images.refresh_interval.total_seconds(),
        "prepull_timeout": images.prepull_timeout.total_seconds(),
        "recommended_tag": images.recommended_tag,
        "num_releases": images.num_releases,
        "num_weeklies": images.num_weeklies,
        "num_dailies": images.num_dailies,
        "cycle": images.cycle,
        "pin": list(images.pin),
        "alias_tags": list(images.alias_tags),
    }


def prepuller_status_json(
    images_config: ImagesConfig, images: PrepullerImages, nodes: Sequence[NodeStatus]
) -> dict[str, Any]:
    """``GET /spawner/v1/prepulls`` (reference 7.1)."""

    def node_image(item: NodeImage) -> dict[str, Any]:
        return {
            "reference": item.reference,
            "tag": item.tag,
            "name": item.name,
            "digest": item.digest,
            "size": item.size,
            "nodes": list(item.nodes),
            "missing": list(item.missing),
        }

    return {
        "config": prepuller_config_json(images_config),
        "images": {
            "prepulled": [node_image(i) for i in images.prepulled],
            "pending": [node_image(i) for i in images.pending],
        },
        "nodes": [
            {"name": n.name, "eligible": n.eligible, "comment": n.comment, "cached": list(n.cached)}
            for n in nodes
        ],
    }


def resolved_image_json(image: ResolvedImage) -> dict[str, Any]:
    """A resolved image: the ``PrepulledImage`` shape (it has no null fields) plus
    ``reference_with_digest``."""
    return {**spawner_image_json(image), "reference_with_digest": image.reference_with_digest}


def tag_json(image: Image) -> dict[str, Any]:
    """One tag as ``evaluate --output tags`` prints it."""
    parsed = image.parsed
    version = parsed.version
    return {
        "tag": image.tag,
        "type": parsed.image_type.value,
        "display_name": parsed.display_name,
        "version": str(version) if version else None,
        "cycle": parsed.cycle,
        "cycle_build": parsed.cycle_build,
        "build": parsed.build,
        "extra": parsed.extra,
        "architecture": parsed.architecture,
        "date": parsed.date.date().isoformat() if parsed.date else None,
        "digest": image.digest,
        "alias_target": image.alias_target,
        "aliases": image.alias_names(),
    }
