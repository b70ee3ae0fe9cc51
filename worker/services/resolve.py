"""Resolving a tag, reference or image class to one image, as the spawner asks at spawn time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

import structlog

from worker.domain.errors import (
    InvalidImageClassError,
    RegistryUnavailableError,
    UnknownImageError,
)
from worker.domain.menu import ImageCatalog
from worker.domain.refresh import HeadFound, HeadMissing, HeadResult
from worker.domain.spawner import (
    FetchDigest,
    Found,
    ImageClass,
    Lookup,
    ResolvedImage,
    lookup_class,
    lookup_reference,
    lookup_tag,
    parse_reference,
    resolved_image,
)
from worker.services.spawner import CatalogAt, SpawnerCatalog

__all__ = ["FreshDigest", "ImageName", "ImageResolver"]

log = structlog.get_logger("imageledger.resolve")

ImageName = Literal["reference", "tag", "class"]
"""How the spawner or an operator names an image: by reference, by tag or by image class."""
_CLASSES = ", ".join(f"'{c.value}'" for c in ImageClass)


class FreshDigest(Protocol):
    """Where a digest the ledger does not know comes from: a registry HEAD, spent with
    care (``services.fresh_digests.FreshDigests``)."""

    async def head(self, tag: str) -> HeadResult:
        """The tag's digest now, or why not (ResolveRateLimitedError past the budget)."""


class ImageResolver:
    """The reference's ``image_for_tag_name``, ``image_for_reference`` and image classes.

    Errors, besides the ledger's: `InvalidDockerReferenceError` (does not parse, or no tag
    where one is needed), `UnknownImageError` (not in the repository),
    `RegistryUnavailableError` (the HEAD failed) and `ResolveRateLimitedError` (no HEAD left
    this minute). The ledger answers whenever it knows the digest (the last refresh's); a
    HEAD is made only for a tag it never resolved.
    """

    def __init__(
        self, views: SpawnerCatalog, digests: FreshDigest, *, head_unknown: bool = False
    ) -> None:
        self._views = views
        self._digests = digests
        self._head_unknown = head_unknown
        """HEAD tags the last listing did not have (a complete listing, as Artifact
        Registry's, whose other tags never need one)."""

    async def resolve(self, name: ImageName, value: str) -> ResolvedImage:
        """The image named by a reference, a tag or an image class (its value, such as
        ``latest-weekly``); an unknown class is an `InvalidImageClassError`."""
        if name == "class":
            try:
                image_class = ImageClass(value)
            except ValueError as exc:
                raise InvalidImageClassError(f"Input should be {_CLASSES}") from exc
            return await self.for_class(image_class)
        if name == "reference":
            return await self.for_reference(value)
        return await self.for_tag(value)

    async def for_tag(self, tag: str) -> ResolvedImage:
        """The image a tag of the repository names now."""
        return await self._resolve(
            lambda view: lookup_tag(view, tag, head_unknown=self._head_unknown)
        )

    async def for_reference(self, text: str) -> ResolvedImage:
        """The image a ``registry/repository[:tag][@digest]`` reference names."""
        reference = parse_reference(text)
        return await self._resolve(
            lambda view: lookup_reference(view, reference, text, head_unknown=self._head_unknown)
        )

    async def for_class(self, image_class: ImageClass) -> ResolvedImage:
        """The prepull set's recommended image, or its newest of a type."""
        return await self._resolve(lambda view: lookup_class(view, image_class))

    async def _resolve(self, lookup: Callable[[ImageCatalog], Lookup]) -> ResolvedImage:
        current = await self._views.current()
        found = lookup(current.view)
        if isinstance(found, FetchDigest):
            return self._result(current, found.tag, await self._head(current, found))
        assert isinstance(found, Found)
        image = found.image
        assert image.digest is not None
        return self._result(current, image.tag, image.digest)

    async def _head(self, current: CatalogAt, wanted: FetchDigest) -> str:
        repository = current.view.repository
        result = await self._digests.head(wanted.tag)
        if isinstance(result, HeadFound):
            return result.digest
        if isinstance(result, HeadMissing):
            raise UnknownImageError(wanted.not_found)
        log.warning(
            "cannot resolve image",
            registry=repository.registry,
            repository=repository.repository,
            tag=wanted.tag,
            error=result.reason,
        )
        raise RegistryUnavailableError(
            f"cannot fetch the digest of {repository.reference(wanted.tag)}: {result.reason}"
        )

    def _result(self, current: CatalogAt, tag: str, digest: str) -> ResolvedImage:
        """The resolved image; when its digest is not the ledger's (the tag moved since the
        last refresh, or a reference gave another), aliases and names follow the new digest."""
        view = current.view
        image = view.collection.image_for_tag(tag)
        if image is None or image.digest != digest:
            view = self._views.with_digest(current, tag, digest)
            image = view.collection.image_for_tag(tag)
        if image is None:
            raise UnknownImageError(f'Docker tag "{tag}" not found')
        return resolved_image(view, image)
