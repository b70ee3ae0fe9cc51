"""What the spawner API serves, assembled from the rows the projections store.

A refresh stores its catalog as rows (``ledger.images``, ``ledger.prepull_targets``); the
node fold keeps the nodes (eligibility decided when they were seen) and what each holds.
The spawner's ``images`` and ``prepulls`` documents are these rows joined with the nodes:
no collection is rebuilt per request. The rules are the catalog's
(``worker.domain.menu.ImageCatalog``): an image is prepulled when every eligible node
holds its digest; the nodes listed are those the node selector matched.
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import field, frozen

from worker.domain.images import Repository
from worker.domain.menu import (
    Holdings,
    NodeImage,
    NodeStatus,
    PrepullerImages,
    SpawnerImage,
    SpawnerImages,
    split_prepulled,
)
from worker.domain.node_observation import OUTSIDE_SELECTOR
from worker.domain.tags import ImageType, parse_alias_tag

__all__ = ["ServedCatalog", "StoredImage", "StoredNode", "StoredTarget"]


@frozen
class StoredImage:
    """One tag of the collection as ``ledger.images`` stores it (display order)."""

    tag: str
    digest: str | None
    name: str
    aliases: tuple[str, ...]
    architecture: str | None
    alias_target: str | None


@frozen
class StoredTarget:
    """One image of the prepull set as ``ledger.prepull_targets`` stores it (resolved
    aliases of another target left out, display order)."""

    tag: str
    digest: str | None
    reference: str
    name: str
    image_type: str
    size: int | None


@frozen
class StoredNode:
    """A current node as ``ledger.nodes`` stores it, with the digests it holds (and their
    sizes, as its kubelet reported them)."""

    name: str
    eligible: bool
    comment: str | None
    held: Mapping[str, int | None]

    @property
    def selected(self) -> bool:
        """Whether the node selector matched it (outside it, a node is recorded ineligible
        with that reason: ``worker.domain.node_observation``)."""
        return self.comment != OUTSIDE_SELECTOR


@frozen
class ServedCatalog:
    """The stored rows of one repository and the current nodes, at one log position."""

    position: int
    repository: Repository
    recommended_tag: str | None
    """The recommended tag of the policy the rows were stored with (none before a refresh)."""
    images: tuple[StoredImage, ...]
    targets: tuple[StoredTarget, ...]
    nodes: tuple[StoredNode, ...]
    """The current nodes the selector matched, sorted by name."""
    holdings: Holdings = field(init=False, repr=False)

    @classmethod
    def of(
        cls,
        position: int,
        repository: Repository,
        recommended_tag: str | None,
        images: tuple[StoredImage, ...],
        targets: tuple[StoredTarget, ...],
        nodes: tuple[StoredNode, ...],
    ) -> ServedCatalog:
        """The catalog of rows as read; nodes outside the selector are left out."""
        selected = tuple(sorted((n for n in nodes if n.selected), key=lambda n: n.name))
        return cls(position, repository, recommended_tag, images, targets, selected)

    def __attrs_post_init__(self) -> None:
        holdings = Holdings.of((n.name, n.eligible, n.held) for n in self.nodes)
        object.__setattr__(self, "holdings", holdings)

    def _shown(self, image: StoredImage) -> SpawnerImage:
        shown = (image.tag, image.name, image.digest, image.aliases)
        return self.holdings.shown(self.repository, *shown)

    def _recommended(self) -> StoredImage | None:
        """The recommended tag's image when it is in the prepull set: the policy always
        makes it a prepull candidate unless its own name is architecture-specific. The
        stored architecture is the name's, unless the image was resolved as an alias of
        another (then it may be the target's): the name's is read from the tag grammar."""
        image = next((i for i in self.images if i.tag == self.recommended_tag), None)
        if image is None:
            return None
        own = image.architecture
        if image.alias_target is not None:
            own = parse_alias_tag(image.tag).architecture
        return image if own is None else None

    def _latest(self, kind: ImageType) -> StoredImage | None:
        """The prepull set's newest image of a type (typed images are never hidden among
        the targets, and a target is never architecture-specific)."""
        target = next((t for t in self.targets if t.image_type == kind.value), None)
        if target is None:
            return None
        return next((i for i in self.images if i.tag == target.tag), None)

    def spawner_images(self) -> SpawnerImages:
        """The spawner images document: recommended, latest of each type, and every tag
        that names no single architecture."""

        def shown(image: StoredImage | None) -> SpawnerImage | None:
            return self._shown(image) if image is not None else None

        return SpawnerImages(
            recommended=shown(self._recommended()),
            latest_weekly=shown(self._latest(ImageType.WEEKLY)),
            latest_daily=shown(self._latest(ImageType.DAILY)),
            latest_release=shown(self._latest(ImageType.RELEASE)),
            all=tuple(self._shown(i) for i in self.images if i.architecture is None),
        )

    def prepuller_images(self) -> PrepullerImages:
        """The prepull targets, split into prepulled and pending."""
        entries = [
            NodeImage(
                reference=t.reference,
                tag=t.tag,
                name=t.name,
                digest=t.digest,
                size=self.holdings.size(t.digest, t.size),
                nodes=self.holdings.have(t.digest),
                missing=tuple(self.holdings.missing(t.digest)),
            )
            for t in self.targets
        ]
        return split_prepulled(self.holdings, entries)

    def node_statuses(self) -> list[NodeStatus]:
        """Every selected node, sorted by name, with the targets it holds."""
        return [
            NodeStatus(
                node.name,
                node.eligible,
                node.comment,
                tuple(t.reference for t in self.targets if t.digest in node.held),
            )
            for node in self.nodes
        ]
