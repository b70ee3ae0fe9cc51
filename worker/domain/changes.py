"""Whether what the spawner offers changed, and the ``images.changed`` message that says how.

A fold (a refresh, or a batch of inventories and pod completions that moves prepull
gating) compares the images state of each repository before and after, inside its
transaction. A change yields one message whose id derives from the log position the fold
reached and from the change itself, so re-running the same fold invents no second message
while a later fold making the same change again gets a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from attrs import frozen

from worker.domain.messages import ImagesChangedMessage, Outgoing, TaggedImage

__all__ = [
    "ChangeRule",
    "Gating",
    "ImagesState",
    "MenuEntry",
    "Offer",
    "RepositoryKey",
    "changed_message_id",
    "images_changed",
    "images_changes",
    "images_state",
]

RepositoryKey = tuple[str, str]
"""(registry, repository)."""


@frozen
class ImagesState:
    """What the spawner sees of one repository: the radio entries shown (after prepull
    gating), the dropdown, the prepull set and the recommended image, in display order."""

    registry: str
    repository: str
    menu: tuple[TaggedImage, ...] = ()
    dropdown: tuple[TaggedImage, ...] = ()
    prepull: tuple[TaggedImage, ...] = ()
    recommended: TaggedImage | None = None

    @property
    def key(self) -> RepositoryKey:
        """(registry, repository)."""
        return self.registry, self.repository


@frozen
class MenuEntry:
    """One menu entry as a refresh stored it: ``radio`` or ``dropdown``, and whether it
    shows only once every eligible node holds its digest (prepull gating)."""

    section: str
    tag: str
    digest: str | None
    requires_prepulled: bool = False


@frozen
class Offer:
    """What a refresh decided a repository offers, before prepull gating: the menu entries
    and the prepull set, each in display order."""

    registry: str
    repository: str
    entries: tuple[MenuEntry, ...] = ()
    prepull: tuple[TaggedImage, ...] = ()

    def gated_digests(self) -> frozenset[str]:
        """The digests whose presence decides whether an entry shows."""
        return frozenset(
            e.digest for e in self.entries if e.requires_prepulled and e.digest is not None
        )


@frozen
class Gating:
    """How many nodes are eligible, and how many of them hold each digest."""

    eligible_nodes: int
    holders: Mapping[str, int]

    def held(self, digest: str | None) -> bool:
        """Whether every eligible node holds ``digest`` (vacuously, with none eligible)."""
        return digest is not None and self.holders.get(digest, 0) >= self.eligible_nodes


def images_state(offer: Offer, gating: Gating, *, dropdown: bool = True) -> ImagesState:
    """What the spawner sees of an offer: the radio entries that need no prepull, or whose
    digest every eligible node holds; the dropdown (left empty when ``dropdown`` is
    false: only refreshes change it); the prepull set; the recommended image (the first
    radio entry that needs no prepull)."""
    radio = [e for e in offer.entries if e.section == "radio"]
    shown = [e for e in radio if not e.requires_prepulled or gating.held(e.digest)]
    listed = [e for e in offer.entries if e.section == "dropdown"] if dropdown else []
    recommended = next((e for e in radio if not e.requires_prepulled), None)
    return ImagesState(
        offer.registry,
        offer.repository,
        menu=tuple(TaggedImage(e.tag, e.digest) for e in shown),
        dropdown=tuple(TaggedImage(e.tag, e.digest) for e in listed),
        prepull=offer.prepull,
        recommended=TaggedImage(recommended.tag, recommended.digest) if recommended else None,
    )


ChangeRule = Callable[[ImagesState, ImagesState, int], Outgoing | None]
"""(before, after, log position) -> the message to announce, if any: ``images_changed``
with the time of the change bound (how a service hands the rule to a store)."""


def _tags(images: Sequence[TaggedImage]) -> list[str]:
    return list(dict.fromkeys(i.tag for i in images))


def _diff(
    before: Sequence[TaggedImage], after: Sequence[TaggedImage]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(tags added, in the after order; tags removed, in the before order)."""
    old, new = _tags(before), _tags(after)
    return tuple(t for t in new if t not in old), tuple(t for t in old if t not in new)


def _moved(before: ImagesState, after: ImagesState) -> tuple[str, ...]:
    """Tags listed before and after whose digest differs (both digests known or not)."""
    old: dict[str, str | None] = {}
    for image in (*before.menu, *before.dropdown, *before.prepull):
        old.setdefault(image.tag, image.digest)
    moved: dict[str, None] = {}
    for image in (*after.menu, *after.dropdown, *after.prepull):
        if image.tag in old and old[image.tag] != image.digest:
            moved[image.tag] = None
    return tuple(moved)


def changed_message_id(message: ImagesChangedMessage, position: int) -> str:
    """Stable for one change at one log position (``changed_at`` left out)."""
    recommended = message.recommended
    parts = [
        message.registry,
        message.repository,
        str(position),
        *(
            ",".join(tags)
            for tags in (
                message.menu_added,
                message.menu_removed,
                message.dropdown_added,
                message.dropdown_removed,
                message.prepull_added,
                message.prepull_removed,
                message.moved,
            )
        ),
        recommended.tag if recommended else "",
        (recommended.digest or "") if recommended else "",
    ]
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return f"images.changed:{digest}"


def images_changed(
    before: ImagesState, after: ImagesState, *, position: int, at: datetime
) -> Outgoing | None:
    """The ``images.changed`` message of one repository, or None when the menu, the
    dropdown, the prepull set and the recommended image are all as they were.

    ``position`` is the log position the fold reached (its last event); ``at`` the time
    of the change.
    """
    menu_added, menu_removed = _diff(before.menu, after.menu)
    dropdown_added, dropdown_removed = _diff(before.dropdown, after.dropdown)
    prepull_added, prepull_removed = _diff(before.prepull, after.prepull)
    moved = _moved(before, after)
    lists = (
        menu_added,
        menu_removed,
        dropdown_added,
        dropdown_removed,
        prepull_added,
        prepull_removed,
        moved,
    )
    if not any(lists) and before.recommended == after.recommended:
        return None
    message = ImagesChangedMessage(after.registry, after.repository, *lists, after.recommended, at)
    return Outgoing(message, message_id=changed_message_id(message, position))


def images_changes(
    before: Mapping[RepositoryKey, ImagesState],
    after: Mapping[RepositoryKey, ImagesState],
    *,
    position: int,
    at: datetime,
) -> list[Outgoing]:
    """One message per repository whose state changed (a repository absent on one side
    counts as empty there), in repository order."""
    messages = []
    for key in sorted({*before, *after}):
        empty = ImagesState(*key)
        change = images_changed(
            before.get(key, empty), after.get(key, empty), position=position, at=at
        )
        if change is not None:
            messages.append(change)
    return messages
