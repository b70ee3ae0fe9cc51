"""Offline evaluation: what the platform would show for given tags, nodes and policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from attrs import evolve, frozen

from worker.config import Config, DockerSource
from worker.domain.images import TagEntry, build_collection, parse_entries
from worker.domain.menu import ImageCatalog, make_view
from worker.domain.nodes import Node
from worker.domain.policy import prepull_candidates

__all__ = ["DigestKnowledge", "Evaluation", "evaluate"]

DigestKnowledge = Literal["all", "prepull-set"]


@frozen
class Evaluation:
    """The view plus the prepull candidates it was built from."""

    view: ImageCatalog
    candidates: tuple[str, ...]


def evaluate(
    config: Config,
    entries: Sequence[TagEntry],
    nodes: Sequence[Node],
    digests: DigestKnowledge = "all",
) -> Evaluation:
    """Build the collection, prepull set and node view from plain inputs.

    With ``digests="prepull-set"`` only the prepull candidates keep their digests, as the
    reference's Docker source knows them; with ``"all"`` every given digest is known, as
    with its Artifact Registry source and as after our refreshes converge (difference 8).
    """
    images_config = config.images
    policy = images_config.policy()
    docker = isinstance(images_config.source, DockerSource)
    aliases = policy.configured_aliases() if docker else frozenset()
    images = parse_entries(entries, aliases, policy.cycle)
    candidates = prepull_candidates([i.parsed for i in images], policy)
    if digests == "prepull-set":
        wanted = set(candidates)
        images = [i if i.tag in wanted else evolve(i, digest=None, size=None) for i in images]
    collection = build_collection(images)
    view = make_view(
        images_config.repository,
        collection,
        candidates,
        policy,
        nodes,
        config.lab.node_selector,
        config.lab.tolerations,
    )
    return Evaluation(view, tuple(candidates))
