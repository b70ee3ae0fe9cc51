"""Image policy: what to prepull (newest N per type, recommended, pins) and the dropdown filter."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from attrs import field, frozen, validators

from worker.domain.images import Image
from worker.domain.tags import ImageType, ParsedTag, Version, sorted_newest_first

__all__ = [
    "DropdownPolicy",
    "ImageFilter",
    "PrepullPolicy",
    "filter_dropdown",
    "prepull_candidates",
]

_non_negative = validators.optional(validators.ge(0))


@frozen
class PrepullPolicy:
    """The reference's ``images:`` policy keys (reference 3.1)."""

    recommended_tag: str = "recommended"
    num_releases: int = field(default=1, validator=validators.ge(0))
    num_weeklies: int = field(default=2, validator=validators.ge(0))
    num_dailies: int = field(default=3, validator=validators.ge(0))
    cycle: int | None = None
    pin: tuple[str, ...] = ()
    alias_tags: tuple[str, ...] = ()

    def configured_aliases(self) -> frozenset[str]:
        """Tags that are Alias by configuration (Docker sources)."""
        return frozenset((self.recommended_tag, *self.alias_tags))


def prepull_candidates(tags: Iterable[ParsedTag], policy: PrepullPolicy) -> list[str]:
    """The prepull set's tags: newest N releases, weeklies, dailies, plus recommended and pins.

    Architecture-specific tags are never candidates, pinned or not. A pinned tag that is
    also among the newest N appears once (DOMAIN.md difference 1). Tags are returned in
    display order.
    """
    wanted = {policy.recommended_tag, *policy.pin}
    limits = {
        ImageType.RELEASE: policy.num_releases,
        ImageType.WEEKLY: policy.num_weeklies,
        ImageType.DAILY: policy.num_dailies,
    }
    taken = dict.fromkeys(limits, 0)
    chosen: list[str] = []
    for tag in sorted_newest_first(tags):
        if tag.is_arch_specific:
            continue
        kind = tag.image_type
        if kind in limits and taken[kind] < limits[kind]:
            taken[kind] += 1
            chosen.append(tag.tag)
        elif tag.tag in wanted:
            chosen.append(tag.tag)
    return chosen


@frozen
class ImageFilter:
    """Dropdown constraints for one image type (reference 3.3)."""

    number: int | None = field(default=None, validator=_non_negative)
    age: timedelta | None = None
    cutoff_build: int | None = None
    cutoff_date: datetime | None = None
    cutoff_version: str | None = field(default=None)

    @cutoff_version.validator
    def _check_version(self, _: object, value: str | None) -> None:
        if value is not None:
            Version.parse(value)

    def keep(self, tag: ParsedTag, now: datetime) -> bool:
        """Whether a tag passes every constraint except ``number``."""
        threshold = self._date_threshold(now)
        if threshold is not None and tag.date is not None and tag.date < threshold:
            return False
        if (
            self.cutoff_build is not None
            and tag.build is not None
            and tag.build < self.cutoff_build
        ):
            return False
        return not (
            self.cutoff_version is not None
            and tag.semantic
            and tag.version is not None
            and tag.version.key() < Version.parse(self.cutoff_version).key()
        )

    def _date_threshold(self, now: datetime) -> datetime | None:
        candidates = [d for d in (self.cutoff_date, now - self.age if self.age else None) if d]
        return max(candidates) if candidates else None


@frozen
class DropdownPolicy:
    """Per-type dropdown filters; Alias and Unknown images are never filtered."""

    release: ImageFilter = ImageFilter()
    weekly: ImageFilter = ImageFilter()
    daily: ImageFilter = ImageFilter()
    release_candidate: ImageFilter = ImageFilter()
    experimental: ImageFilter = ImageFilter()

    @property
    def time_dependent(self) -> bool:
        """Whether the dropdown changes with time alone (an ``age`` filter)."""
        rules = (self.release, self.weekly, self.daily, self.release_candidate, self.experimental)
        return any(rule.age is not None for rule in rules)

    def for_type(self, image_type: ImageType) -> ImageFilter | None:
        """The filter for a type, or None for types that are never filtered."""
        return {
            ImageType.RELEASE: self.release,
            ImageType.WEEKLY: self.weekly,
            ImageType.DAILY: self.daily,
            ImageType.CANDIDATE: self.release_candidate,
            ImageType.EXPERIMENTAL: self.experimental,
        }.get(image_type)


def filter_dropdown(
    images: Sequence[Image], policy: DropdownPolicy, now: datetime, *, invert: bool = False
) -> list[Image]:
    """Images (in display order) that pass the policy; ``invert`` gives the rest (pruning).

    Constraints are ANDed, then ``number`` caps the survivors newest first. An absent
    ``number`` means no limit and ``number: 0`` means none (DOMAIN.md difference 9).
    Architecture-specific images never pass.
    """
    counts: dict[ImageType, int] = {}
    kept: list[Image] = []
    rejected: list[Image] = []
    for image in images:
        if image.parsed.is_arch_specific:
            continue
        rule = policy.for_type(image.image_type)
        passes = rule is None or rule.keep(image.parsed, now)
        if passes and rule is not None and rule.number is not None:
            seen = counts.get(image.image_type, 0)
            passes = seen < rule.number
            counts[image.image_type] = seen + (1 if passes else 0)
        (kept if passes else rejected).append(image)
    return rejected if invert else kept
