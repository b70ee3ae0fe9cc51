"""Images and image collections: primary image per digest, alias resolution, listings."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from types import MappingProxyType

from attrs import evolve, field, frozen

from worker.domain.tags import (
    ImageType,
    ParsedTag,
    parse_alias_tag,
    parse_tag,
    sort_display_order,
)

__all__ = [
    "Image",
    "ImageCollection",
    "Repository",
    "TagEntry",
    "build_collection",
    "parse_entries",
]


@frozen
class Repository:
    """Where images live: ``registry`` (host[:port]) and ``repository`` path."""

    registry: str
    repository: str

    def reference(self, tag: str, digest: str | None = None) -> str:
        """``registry/repository:tag`` with ``@digest`` when given."""
        text = f"{self.registry}/{self.repository}:{tag}"
        return f"{text}@{digest}" if digest else text

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}"


@frozen
class TagEntry:
    """One tag as a source knows it: its digest (if known) and size (if known)."""

    tag: str
    digest: str | None = None
    size: int | None = None


@frozen
class Image:
    """A parsed tag plus what the registry says about it, after alias resolution."""

    parsed: ParsedTag
    digest: str | None = None
    size: int | None = None
    aliases: frozenset[str] = frozenset()
    alias_target: str | None = None

    @property
    def tag(self) -> str:
        """The tag string."""
        return self.parsed.tag

    @property
    def image_type(self) -> ImageType:
        """The (possibly promoted) type."""
        return self.parsed.image_type

    @property
    def display_name(self) -> str:
        """The human name shown in menus."""
        return self.parsed.display_name

    def alias_names(self) -> list[str]:
        """Every other tag known to name this image, sorted (reference's ``aliases``)."""
        names = set(self.aliases)
        if self.alias_target:
            names.add(self.alias_target)
        names.discard(self.tag)
        return sorted(names)


def parse_entries(
    entries: Iterable[TagEntry], alias_tags: Collection[str] = (), cycle: int | None = None
) -> list[Image]:
    """Parse entries into images; configured alias tags become Alias; apply the cycle filter.

    The cycle filter uses each tag's own cycle, before alias resolution (reference 2.3 step 0).
    """
    images = []
    for entry in entries:
        parsed = parse_alias_tag(entry.tag) if entry.tag in alias_tags else parse_tag(entry.tag)
        if cycle is not None and parsed.cycle != cycle:
            continue
        images.append(Image(parsed, entry.digest, entry.size))
    return images


def _resolved_name(alias: ParsedTag, target: ParsedTag, arch: str | None) -> str:
    base = (alias.base or alias.tag).replace("_", " ").title()
    inner = target.display_name.replace(" (", ", ").replace(")", "")
    if arch:
        inner = inner.replace(f" [{arch}]", "")
    name = f"{base} ({inner})"
    return f"{name} [{arch}]" if arch else name


def _resolve(alias: Image, target: Image) -> Image:
    """Promote ``alias`` to an Alias of ``target`` (reference 2.3, "Resolving")."""
    arch = alias.parsed.architecture or target.parsed.architecture
    parsed = alias.parsed.with_type(
        ImageType.ALIAS,
        display_name=_resolved_name(alias.parsed, target.parsed, arch),
        cycle=target.parsed.cycle,
        architecture=arch,
        date=alias.parsed.date or target.parsed.date,
    )
    return evolve(alias, parsed=parsed, alias_target=target.tag)


def _parsed(image: Image) -> ParsedTag:
    return image.parsed


def build_collection(images: Iterable[Image]) -> ImageCollection:
    """Resolve aliases and index images by tag and digest.

    Every image sharing a digest names the others as aliases. The primary image of a
    digest is its first typed image in display order (type order, newest first), so the
    result does not depend on input order. Alias and Unknown images whose digest has a
    typed primary are resolved against it; the rest stay as they are.
    """
    ordered = sort_display_order(images, _parsed)
    groups: dict[str, list[Image]] = {}
    for image in ordered:
        if image.digest is not None:
            groups.setdefault(image.digest, []).append(image)
    replaced: dict[str, Image] = {}
    for members in groups.values():
        if len(members) == 1:
            continue
        typed = [m for m in members if not m.image_type.possible_alias]
        names = frozenset(m.tag for m in members)
        for member in members:
            updated = evolve(member, aliases=names - {member.tag})
            if typed and member.image_type.possible_alias:
                updated = _resolve(updated, typed[0])
            replaced[member.tag] = updated
    result = [replaced.get(i.tag, i) for i in ordered]
    if replaced:
        result = sort_display_order(result, _parsed)
    return ImageCollection(tuple(result))


@frozen
class ImageCollection:
    """Images in display order with indexes by tag and by digest (primary image)."""

    images: tuple[Image, ...]
    _by_tag: Mapping[str, Image] = field(init=False, repr=False)
    _by_digest: Mapping[str, Image] = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        by_tag = {i.tag: i for i in self.images}
        by_digest: dict[str, Image] = {}
        for image in self.images:
            if image.digest is None:
                continue
            current = by_digest.get(image.digest)
            if current is None or (
                current.image_type.possible_alias and not image.image_type.possible_alias
            ):
                by_digest[image.digest] = image
        object.__setattr__(self, "_by_tag", MappingProxyType(by_tag))
        object.__setattr__(self, "_by_digest", MappingProxyType(by_digest))

    def __len__(self) -> int:
        return len(self.images)

    def __contains__(self, tag: object) -> bool:
        return tag in self._by_tag

    def image_for_tag(self, tag: str) -> Image | None:
        """The image with exactly this tag."""
        return self._by_tag.get(tag)

    def image_for_digest(self, digest: str) -> Image | None:
        """The primary image of a digest (typed when one exists)."""
        return self._by_digest.get(digest)

    def latest(self, image_type: ImageType) -> Image | None:
        """The newest non-architecture-specific image of a type."""
        for image in self.images:
            if image.image_type is image_type and not image.parsed.is_arch_specific:
                return image
        return None

    def listing(
        self,
        *,
        hide_aliased: bool = False,
        hide_resolved_aliases: bool = False,
        include_arch: bool = False,
    ) -> list[Image]:
        """Images in display order with the reference's optional hides (reference 2.4)."""
        targets = {i.alias_target for i in self.images if i.alias_target is not None}
        out = []
        for image in self.images:
            if image.parsed.is_arch_specific and not include_arch:
                continue
            if hide_aliased and image.tag in targets and not image.image_type.possible_alias:
                continue
            if hide_resolved_aliases and image.alias_target in self._by_tag:
                continue
            out.append(image)
        return out

    def subset(self, tags: Collection[str]) -> ImageCollection:
        """The images with these tags, keeping their resolution in this collection."""
        return ImageCollection(tuple(i for i in self.images if i.tag in tags))

    def digests(self) -> dict[str, Image]:
        """One image per digest (the primary), in display order: what to pull."""
        out: dict[str, Image] = {}
        for image in self.images:
            if image.digest is not None and image.digest not in out:
                out[image.digest] = self._by_digest[image.digest]
        return out
