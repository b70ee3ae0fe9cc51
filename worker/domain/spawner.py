"""The spawner's questions answered purely: which image a tag, reference or class names."""

from __future__ import annotations

from enum import Enum

from attrs import asdict, evolve, frozen

from worker.domain.errors import InvalidDockerReferenceError, UnknownImageError
from worker.domain.images import Image, TagEntry
from worker.domain.menu import ImageCatalog
from worker.domain.nodes import Node
from worker.domain.references import DockerReference, InvalidReferenceError
from worker.domain.tags import ImageType

__all__ = [
    "FetchDigest",
    "Found",
    "ImageClass",
    "LedgerSnapshot",
    "ResolvedImage",
    "lookup_class",
    "lookup_reference",
    "lookup_tag",
    "parse_reference",
    "resolved_image",
]


@frozen
class LedgerSnapshot:
    """What the views hold at one log position: current tags (with their last known
    digests) of the configured repository, and the current nodes with what they hold."""

    position: int
    entries: tuple[TagEntry, ...]
    nodes: tuple[Node, ...]

    def with_digest(self, tag: str, digest: str) -> tuple[TagEntry, ...]:
        """The entries with ``tag`` naming ``digest`` (a fresh HEAD, or a trusted reference);
        a tag the entries lack is added (pushed since the last listing)."""
        entries = tuple(evolve(e, digest=digest) if e.tag == tag else e for e in self.entries)
        if any(e.tag == tag for e in entries):
            return entries
        return (*entries, TagEntry(tag, digest))


class ImageClass(Enum):
    """The reference's ``image_class`` choices."""

    RECOMMENDED = "recommended"
    LATEST_RELEASE = "latest-release"
    LATEST_WEEKLY = "latest-weekly"
    LATEST_DAILY = "latest-daily"


_CLASS_TYPES = {
    ImageClass.LATEST_RELEASE: ImageType.RELEASE,
    ImageClass.LATEST_WEEKLY: ImageType.WEEKLY,
    ImageClass.LATEST_DAILY: ImageType.DAILY,
}


@frozen
class Found:
    """The image, with the digest to use, is known from the ledger."""

    image: Image


@frozen
class FetchDigest:
    """The tag is known but the ledger never learned its digest: it must come from a HEAD.

    ``not_found`` is the message when the registry no longer has the tag.
    """

    tag: str
    not_found: str


Lookup = Found | FetchDigest


@frozen
class ResolvedImage:
    """One resolved image: the spawner's ``PrepulledImage`` (``SpawnerImage``, field for
    field, its digest known) plus what a lab pod runs."""

    reference: str
    tag: str
    name: str
    digest: str
    aliases: tuple[str, ...]
    prepulled: bool
    reference_with_digest: str


def parse_reference(text: str) -> DockerReference:
    """Parse a reference to spawn; one with neither tag nor digest is refused (reference 6)."""
    try:
        reference = DockerReference.parse(text)
    except InvalidReferenceError as exc:
        raise InvalidDockerReferenceError(str(exc)) from exc
    if reference.tag is None and reference.digest is None:
        raise InvalidDockerReferenceError(f'Docker reference "{text}" has no tag')
    return reference


def _found(image: Image, not_found: str) -> Lookup:
    return Found(image) if image.digest is not None else FetchDigest(image.tag, not_found)


def _unknown(tag: str, not_found: str, head_unknown: bool) -> Lookup:
    if head_unknown:
        return FetchDigest(tag, not_found)
    raise UnknownImageError(not_found)


def lookup_tag(view: ImageCatalog, tag: str, *, head_unknown: bool = False) -> Lookup:
    """A tag of the repository's tag list, with the digest the ledger knows (the last
    refresh's); a HEAD only when the ledger never resolved it. The reference HEADs every
    time (4.7): anyone who reaches the API could then drive registry traffic.

    ``head_unknown``: a tag the last listing did not have is HEADed too (an Artifact
    Registry listing knows every digest, so only a tag pushed since needs a HEAD)."""
    not_found = f'Docker tag "{tag}" not found'
    image = view.collection.image_for_tag(tag) if tag in view.collection else None
    if image is None:
        return _unknown(tag, not_found, head_unknown)
    return _found(image, not_found)


def lookup_reference(
    view: ImageCatalog, reference: DockerReference, text: str, *, head_unknown: bool = False
) -> Lookup:
    """A reference as the reference's Docker source resolves it (reference 4.7).

    Registry and repository must be the source's. A digest of the prepull set names its
    image whatever the tag; otherwise a tag is required. A tag of the prepull set gives its
    current image (a digest taken from an older menu loses to the current one); another
    known tag takes the reference's digest as given, or without one the ledger's (a HEAD
    only when the ledger never resolved the tag, or, with ``head_unknown``, never listed it).
    """
    not_found = f'Docker reference "{text}" not found'
    repository = view.repository
    if (reference.registry, reference.repository) != (repository.registry, repository.repository):
        raise UnknownImageError(not_found)
    if reference.digest is not None:
        pulled = view.prepull_set.image_for_digest(reference.digest)
        if pulled is not None:
            return Found(pulled)
    if reference.tag is None:
        raise InvalidDockerReferenceError(f'Docker reference "{text}" has no tag')
    image = view.collection.image_for_tag(reference.tag)
    if image is None:
        return _unknown(reference.tag, not_found, head_unknown)
    if reference.digest is None or reference.tag in view.prepull_set:
        return _found(image, not_found)
    return Found(evolve(image, digest=reference.digest))


def lookup_class(view: ImageCatalog, image_class: ImageClass) -> Lookup:
    """The prepull set's recommended image, or its newest release, weekly or daily."""
    if image_class is ImageClass.RECOMMENDED:
        image = view.prepull_set.image_for_tag(view.policy.recommended_tag)
    else:
        image = view.prepull_set.latest(_CLASS_TYPES[image_class])
    not_found = f"No {image_class.value} image found"
    if image is None:
        raise UnknownImageError(not_found)
    return _found(image, not_found)


def resolved_image(view: ImageCatalog, image: Image) -> ResolvedImage:
    """The resolved shape of an image of ``view`` whose digest is known."""
    if image.digest is None:
        raise ValueError(f"image {image.tag} has no digest")
    shown = asdict(view.spawner_image(image), recurse=False)  # its digest is image.digest
    with_digest = view.repository.reference(image.tag, image.digest)
    return ResolvedImage(**shown, reference_with_digest=with_digest)
