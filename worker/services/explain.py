"""Explaining why an image is or is not prepulled (or planned) on a node."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from worker.domain.explain import ExplainInput, Explanation, ImageQuery, explain
from worker.domain.prepull import PrepullSettings
from worker.domain.targets import TagFacts
from worker.services.lookup import ImageFinder, find_image

__all__ = ["ExplainLedger", "explain_image"]


class ExplainLedger(ImageFinder, Protocol):
    """What an explanation reads of the ledger."""

    async def gather(
        self, image: TagFacts, node: str, now: datetime, settings: PrepullSettings
    ) -> ExplainInput:
        """Everything the answer for ``image`` on ``node`` needs, read at once."""


async def explain_image(
    store: ExplainLedger, query: ImageQuery, node: str, now: datetime, settings: PrepullSettings
) -> Explanation:
    """The answer for the image the name stands for on ``node`` at ``now`` (a node never
    seen is an answer too: ``Explanation.node_known`` is false).

    Raises UnknownImageError or AmbiguousImageError as ``find_image`` does.
    """
    image = await find_image(store, query)
    return explain(await store.gather(image, node, now, settings))
