"""What the platform shows: prepull state, spawner images, the menu and prepuller status."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from attrs import field, frozen

from worker.domain.images import Image, ImageCollection, Repository
from worker.domain.nodes import Node, Toleration, eligibility, matches_selector
from worker.domain.policy import DropdownPolicy, PrepullPolicy, filter_dropdown
from worker.domain.tags import ImageType

__all__ = [
    "Holdings",
    "ImageCatalog",
    "MenuEntry",
    "MenuImages",
    "NodeImage",
    "NodeStatus",
    "PrepullRequest",
    "PrepullerImages",
    "SpawnerImage",
    "SpawnerImages",
    "make_view",
    "split_prepulled",
]


@frozen
class NodeStatus:
    """A node matched by the node selector, with eligibility and cached prepull images."""

    name: str
    eligible: bool
    comment: str | None
    cached: tuple[str, ...]


@frozen
class NodeImage:
    """A prepull-set image with the nodes that have it and the eligible nodes that lack it."""

    reference: str
    tag: str
    name: str
    digest: str | None
    size: int | None
    nodes: tuple[str, ...]
    missing: tuple[str, ...]


@frozen
class PrepullerImages:
    """Prepull-set images split by state."""

    prepulled: tuple[NodeImage, ...]
    pending: tuple[NodeImage, ...]


@frozen
class SpawnerImage:
    """One image as the spawner API shows it (reference 7.2)."""

    reference: str
    tag: str
    name: str
    digest: str | None
    aliases: tuple[str, ...]
    prepulled: bool


@frozen
class SpawnerImages:
    """The spawner images document (reference 7.2)."""

    recommended: SpawnerImage | None
    latest_weekly: SpawnerImage | None
    latest_daily: SpawnerImage | None
    latest_release: SpawnerImage | None
    all: tuple[SpawnerImage, ...]


@frozen
class MenuEntry:
    """A menu choice: the value to spawn and its label."""

    reference: str
    name: str


@frozen
class MenuImages:
    """The radio list (prepulled images) and the dropdown (every allowed tag)."""

    menu: tuple[MenuEntry, ...]
    dropdown: tuple[MenuEntry, ...]


@frozen
class PrepullRequest:
    """One image to pull on one eligible node."""

    image: Image
    node: str
    reference: str


@frozen
class Holdings:
    """Which of the selected nodes hold each digest, and which of them are eligible."""

    eligible_nodes: tuple[str, ...]
    """Sorted by name."""
    holders: Mapping[str, frozenset[str]] = field(repr=False)
    sizes: Mapping[str, int | None] = field(repr=False)
    """Per digest, the size the first node (by name) holding it reports."""

    @classmethod
    def of(cls, nodes: Iterable[tuple[str, bool, Mapping[str, int | None]]]) -> Holdings:
        """Of the selected nodes, sorted by name: each with its eligibility and the
        digests it holds (with their sizes)."""
        eligible: list[str] = []
        holders: dict[str, set[str]] = {}
        sizes: dict[str, int | None] = {}
        for name, ok, held in nodes:
            if ok:
                eligible.append(name)
            for digest, size in held.items():
                holders.setdefault(digest, set()).add(name)
                sizes.setdefault(digest, size)
        frozen_holders = {d: frozenset(n) for d, n in holders.items()}
        return cls(tuple(sorted(eligible)), frozen_holders, sizes)

    def is_prepulled(self, digest: str | None) -> bool:
        """Present on every eligible node (vacuously true with none; reference 4.6)."""
        if digest is None:
            return False
        have = self.holders.get(digest, frozenset())
        return len(have) >= len(self.eligible_nodes) and have.issuperset(self.eligible_nodes)

    def missing(self, digest: str | None) -> list[str]:
        """Eligible nodes that lack the digest, sorted."""
        have = self.holders.get(digest or "", frozenset())
        return [name for name in self.eligible_nodes if name not in have]

    def have(self, digest: str | None) -> tuple[str, ...]:
        """The nodes that hold the digest, sorted."""
        return tuple(sorted(self.holders.get(digest or "", frozenset())))

    def shown(
        self,
        repository: Repository,
        tag: str,
        name: str,
        digest: str | None,
        aliases: tuple[str, ...],
    ) -> SpawnerImage:
        """The reference's ``PrepulledImage`` shape for one image of ``repository``."""
        reference = repository.reference(tag)
        prepulled = self.is_prepulled(digest)
        return SpawnerImage(reference, tag, name, digest, aliases, prepulled)

    def size(self, digest: str | None, known: int | None) -> int | None:
        """An image's size: the one known, else what a node holding it reports."""
        if known is None and digest is not None:
            return self.sizes.get(digest)
        return known


def split_prepulled(holdings: Holdings, images: Iterable[NodeImage]) -> PrepullerImages:
    """Prepull-set images split into prepulled and pending."""
    entries = [(holdings.is_prepulled(i.digest), i) for i in images]
    return PrepullerImages(
        prepulled=tuple(e for done, e in entries if done),
        pending=tuple(e for done, e in entries if not done),
    )


@frozen
class ImageCatalog:
    """Everything derived from a collection, a policy and the nodes at one moment."""

    repository: Repository
    collection: ImageCollection
    prepull_set: ImageCollection
    policy: PrepullPolicy
    nodes: tuple[Node, ...]
    """The nodes the selector matched, sorted by name."""
    statuses: Mapping[str, tuple[bool, str | None]]
    holdings: Holdings = field(repr=False)

    @property
    def eligible_nodes(self) -> tuple[str, ...]:
        """The eligible nodes, sorted by name."""
        return self.holdings.eligible_nodes

    def is_prepulled(self, image: Image) -> bool:
        """Present on every eligible node (vacuously true with none; reference 4.6)."""
        return self.holdings.is_prepulled(image.digest)

    def missing(self, image: Image) -> list[str]:
        """Eligible nodes that lack the image, sorted."""
        return self.holdings.missing(image.digest)

    def spawner_image(self, image: Image) -> SpawnerImage:
        """The reference's ``PrepulledImage`` shape for one image."""
        shown = (image.tag, image.display_name, image.digest, tuple(image.alias_names()))
        return self.holdings.shown(self.repository, *shown)

    def spawner_images(self) -> SpawnerImages:
        """The spawner images document: recommended, latest of each type, and all tags."""
        recommended = self.prepull_set.image_for_tag(self.policy.recommended_tag)

        def latest(kind: ImageType) -> SpawnerImage | None:
            image = self.prepull_set.latest(kind)
            return self.spawner_image(image) if image else None

        return SpawnerImages(
            recommended=self.spawner_image(recommended) if recommended else None,
            latest_weekly=latest(ImageType.WEEKLY),
            latest_daily=latest(ImageType.DAILY),
            latest_release=latest(ImageType.RELEASE),
            all=tuple(self.spawner_image(i) for i in self.collection.listing()),
        )

    def menu_entry(self, image: Image) -> MenuEntry:
        """A menu entry: reference with digest when known."""
        return MenuEntry(self.repository.reference(image.tag, image.digest), image.display_name)

    def radio_candidates(self) -> list[tuple[Image, bool]]:
        """Radio candidates in order, each with whether it needs to be prepulled to show.

        The recommended image comes first and shows unconditionally; the rest of the
        prepull set (aliased targets hidden) shows only once prepulled.
        """
        candidates: list[tuple[Image, bool]] = []
        recommended = self.prepull_set.image_for_tag(self.policy.recommended_tag)
        if recommended is not None and not recommended.parsed.is_arch_specific:
            candidates.append((recommended, False))
        candidates.extend(
            (image, True)
            for image in self.prepull_set.listing(hide_aliased=True)
            if image is not recommended
        )
        return candidates

    def dropdown_images(self, dropdown: DropdownPolicy, now: datetime) -> list[Image]:
        """Every tag the dropdown policy allows, in display order."""
        return filter_dropdown(self.collection.listing(), dropdown, now)

    def menu_images(self, dropdown: DropdownPolicy, now: datetime) -> MenuImages:
        """Radio: recommended first, then prepulled images; dropdown: every allowed tag."""
        radio = [
            self.menu_entry(image)
            for image, needs_prepull in self.radio_candidates()
            if not needs_prepull or self.is_prepulled(image)
        ]
        allowed = self.dropdown_images(dropdown, now)
        return MenuImages(tuple(radio), tuple(self.menu_entry(i) for i in allowed))

    def status_images(self) -> list[Image]:
        """The prepull set as status lists it: resolved aliases hidden."""
        return self.prepull_set.listing(hide_resolved_aliases=True)

    def node_image(self, image: Image) -> NodeImage:
        """Status of one prepull-set image across the selected nodes."""
        return NodeImage(
            reference=self.repository.reference(image.tag),
            tag=image.tag,
            name=image.display_name,
            digest=image.digest,
            size=self.holdings.size(image.digest, image.size),
            nodes=self.holdings.have(image.digest),
            missing=tuple(self.missing(image)),
        )

    def prepuller_images(self) -> PrepullerImages:
        """Prepull-set images split into prepulled and pending."""
        return split_prepulled(self.holdings, map(self.node_image, self.status_images()))

    def node_statuses(self) -> list[NodeStatus]:
        """Every selected node, sorted by name, with the prepull images it holds."""
        images = self.status_images()
        out = []
        for node in self.nodes:
            ok, comment = self.statuses[node.name]
            cached = tuple(self.repository.reference(i.tag) for i in images if node.has(i.digest))
            out.append(NodeStatus(node.name, ok, comment, cached))
        return out

    def prepull_plan(self) -> list[PrepullRequest]:
        """What to pull where: one image per digest, eligible nodes only (difference 5).

        Order: the recommended image first, then type order and newest first; within an
        image, nodes by name.
        """
        wanted = list(self.prepull_set.digests().values())
        recommended = self.prepull_set.image_for_tag(self.policy.recommended_tag)
        if recommended is not None and recommended.digest is not None:
            first = self.prepull_set.image_for_digest(recommended.digest)
            wanted.sort(key=lambda i: i is not first)
        plan: list[PrepullRequest] = []
        for image in wanted:
            if image.parsed.is_arch_specific:
                continue
            reference = self.repository.reference(image.tag, image.digest)
            plan.extend(PrepullRequest(image, name, reference) for name in self.missing(image))
        return plan


def make_view(
    repository: Repository,
    collection: ImageCollection,
    prepull_tags: Iterable[str],
    policy: PrepullPolicy,
    nodes: Sequence[Node],
    node_selector: Mapping[str, str],
    tolerations: Sequence[Toleration],
) -> ImageCatalog:
    """Select nodes, decide eligibility, and index which nodes hold each digest."""
    selected = tuple(
        sorted(
            (n for n in nodes if matches_selector(n.labels, node_selector)), key=lambda n: n.name
        )
    )
    statuses = {}
    for node in selected:
        verdict = eligibility(node.taints, tolerations)
        statuses[node.name] = (verdict.eligible, verdict.comment)
    holdings = Holdings.of((n.name, statuses[n.name][0], n.digests) for n in selected)
    return ImageCatalog(
        repository=repository,
        collection=collection,
        prepull_set=collection.subset(frozenset(prepull_tags)),
        policy=policy,
        nodes=selected,
        statuses=statuses,
        holdings=holdings,
    )
