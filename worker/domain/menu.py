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
class ImageCatalog:
    """Everything derived from a collection, a policy and the nodes at one moment."""

    repository: Repository
    collection: ImageCollection
    prepull_set: ImageCollection
    policy: PrepullPolicy
    nodes: tuple[Node, ...]
    """The nodes the selector matched, sorted by name."""
    statuses: Mapping[str, tuple[bool, str | None]]
    holders: Mapping[str, frozenset[str]] = field(repr=False)
    eligible_nodes: tuple[str, ...] = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        eligible = tuple(sorted(n for n, (ok, _) in self.statuses.items() if ok))
        object.__setattr__(self, "eligible_nodes", eligible)

    def is_prepulled(self, image: Image) -> bool:
        """Present on every eligible node (vacuously true with none; reference 4.6)."""
        if image.digest is None:
            return False
        have = self.holders.get(image.digest, frozenset())
        return len(have) >= len(self.eligible_nodes) and have.issuperset(self.eligible_nodes)

    def missing(self, image: Image) -> list[str]:
        """Eligible nodes that lack the image, sorted."""
        have = self.holders.get(image.digest or "", frozenset())
        return [name for name in self.eligible_nodes if name not in have]

    def spawner_image(self, image: Image) -> SpawnerImage:
        """The reference's ``PrepulledImage`` shape for one image."""
        return SpawnerImage(
            reference=self.repository.reference(image.tag),
            tag=image.tag,
            name=image.display_name,
            digest=image.digest,
            aliases=tuple(image.alias_names()),
            prepulled=self.is_prepulled(image),
        )

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
        have = self.holders.get(image.digest or "", frozenset())
        size = image.size
        if size is None and image.digest is not None:
            digest = image.digest
            size = next((n.digests[digest] for n in self.nodes if digest in n.digests), None)
        return NodeImage(
            reference=self.repository.reference(image.tag),
            tag=image.tag,
            name=image.display_name,
            digest=image.digest,
            size=size,
            nodes=tuple(sorted(have)),
            missing=tuple(self.missing(image)),
        )

    def prepuller_images(self) -> PrepullerImages:
        """Prepull-set images split into prepulled and pending."""
        entries = [(self.is_prepulled(i), self.node_image(i)) for i in self.status_images()]
        return PrepullerImages(
            prepulled=tuple(e for done, e in entries if done),
            pending=tuple(e for done, e in entries if not done),
        )

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
    holders: dict[str, set[str]] = {}
    for node in selected:
        verdict = eligibility(node.taints, tolerations)
        statuses[node.name] = (verdict.eligible, verdict.comment)
        for digest in node.digests:
            holders.setdefault(digest, set()).add(node.name)
    return ImageCatalog(
        repository=repository,
        collection=collection,
        prepull_set=collection.subset(frozenset(prepull_tags)),
        policy=policy,
        nodes=selected,
        statuses=statuses,
        holders={d: frozenset(n) for d, n in holders.items()},
    )
