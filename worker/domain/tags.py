"""Tag grammar: parse image tags into typed, ordered, displayable values."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from attrs import evolve, field, frozen

T = TypeVar("T")

__all__ = [
    "KNOWN_ARCHITECTURES",
    "ImageType",
    "ParsedTag",
    "Version",
    "parse_alias_tag",
    "parse_tag",
    "sort_display_order",
    "sort_text",
    "sorted_newest_first",
]

KNOWN_ARCHITECTURES = ("amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64")
"""Architectures recognised as a ``-arch`` suffix (DOMAIN.md difference 3).

A ``v``-variant such as ``arm64v8`` or ``armv7`` is recognised too.
"""


class ImageType(enum.Enum):
    """The seven image types, declared in display order."""

    ALIAS = "Alias"
    RELEASE = "Release"
    WEEKLY = "Weekly"
    DAILY = "Daily"
    CANDIDATE = "Release Candidate"
    EXPERIMENTAL = "Experimental"
    UNKNOWN = "Unknown"

    @property
    def rank(self) -> int:
        """Position of this type in every listing (0 first)."""
        return _TYPE_RANK[self]

    @property
    def possible_alias(self) -> bool:
        """Whether images of this type may resolve to another image."""
        return self in (ImageType.ALIAS, ImageType.UNKNOWN)


_TYPE_RANK = {t: i for i, t in enumerate(ImageType)}


@frozen
class Version:
    """A version: semantic for releases, (year, week|month, 0|day) otherwise."""

    major: int
    minor: int
    patch: int
    prerelease: str | None = None
    build: str | None = None

    def key(self) -> tuple[int, int, int, bool, int, str]:
        """Ordering key; a release sorts after its prereleases, rcN numerically."""
        pre = self.prerelease
        number = 0
        if pre is not None:
            digits = re.search(r"(\d+)$", pre)
            number = int(digits.group(1)) if digits else 0
        return (self.major, self.minor, self.patch, pre is None, number, pre or "")

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        return text

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``MAJOR.MINOR.PATCH[-PRERELEASE]``; raise ValueError otherwise."""
        match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?", text.strip())
        if not match:
            raise ValueError(f"not a semantic version: {text!r}")
        major, minor, patch, pre = match.groups()
        return cls(int(major), int(minor), int(patch), pre)


@frozen(eq=False)
class ParsedTag:
    """A tag with everything its name says: type, version, suffixes, display name.

    Tags are identified by their exact string: equality and hashing use ``tag`` only.
    """

    tag: str
    image_type: ImageType
    display_name: str
    version: Version | None = None
    semantic: bool = False
    base: str | None = None
    cycle: int | None = None
    cycle_build: int | None = None
    build: int | None = None
    extra: str | None = None
    architecture: str | None = None
    date: datetime | None = None
    _key: tuple[object, ...] = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_key", _compute_key(self))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParsedTag):
            return NotImplemented
        return self.tag == other.tag

    def __hash__(self) -> int:
        return hash(self.tag)

    @property
    def sort_key(self) -> tuple[object, ...]:
        """Ordering key within a type (ascending = oldest first); total and stable."""
        return self._key

    @property
    def is_arch_specific(self) -> bool:
        """Whether the tag names one architecture (hidden from menus and prepulls)."""
        return self.architecture is not None

    def with_type(self, image_type: ImageType, **changes: Any) -> ParsedTag:
        """A copy with another type (and optionally other fields changed)."""
        return evolve(self, image_type=image_type, **changes)


def _compute_key(t: ParsedTag) -> tuple[object, ...]:
    if t.version is not None:
        head: tuple[object, ...] = (1, t.version.key(), "")
    else:
        head = (0 if t.base is None else 2, (), t.base or "")
    return (
        *head,
        t.cycle is not None,
        t.cycle or 0,
        t.cycle_build is not None,
        t.cycle_build or 0,
        t.build is not None,
        t.build or 0,
        t.extra is not None,
        t.extra or "",
        t.architecture is None,
        t.architecture or "",
        t.tag,
    )


def sorted_newest_first(tags: Iterable[ParsedTag]) -> list[ParsedTag]:
    """Tags in display order: type order, newest first within a type."""
    return sort_display_order(tags, lambda t: t)


def sort_display_order(items: Iterable[T], tag_of: Callable[[T], ParsedTag]) -> list[T]:
    """Items in their tags' display order: type order, then newest first within a type.

    Keys are unique (they end with the tag string), so a newest-first sort followed by a
    stable sort by type rank is exactly that order, and faster than one tuple-keyed sort.
    """
    out = sorted(items, key=lambda i: tag_of(i).sort_key, reverse=True)
    out.sort(key=lambda i: tag_of(i).image_type.rank)
    return out


def sort_text(tag: ParsedTag) -> str:
    """A string whose ``COLLATE "C"`` order equals the ascending order within a type.

    Numbers are length-prefixed; strings end with a byte below every tag character.
    """
    return _encode(tag.sort_key)


def _encode(item: object) -> str:
    if isinstance(item, bool):
        return "1" if item else "0"
    if isinstance(item, int):
        digits = str(item)
        return f"{len(digits):03d}{digits}"
    if isinstance(item, str):
        return item.replace("\x01", "\x01\x02") + "\x01\x01"
    if isinstance(item, tuple):
        return "".join(_encode(x) for x in item)
    raise TypeError(f"cannot encode {item!r}")


# --------------------------------------------------------------------------- grammar

_ARCH = r"(?:-(?P<arch>(?:" + "|".join(KNOWN_ARCHITECTURES) + r")(?:v\d+)?))?"
_SUFFIXES = (
    r"(?:_c(?P<cycle>\d+)\.(?P<cbuild>\d+))?"
    r"(?:_rsp(?P<rsp>\d+))?"
    r"(?:_(?P<extra>.+?))?" + _ARCH
)
_CANDIDATE = re.compile(r"r(?P<major>\d+)_(?P<minor>\d+)_(?P<patch>\d+)_(?P<pre>rc\d+)" + _SUFFIXES)
_RELEASE = re.compile(r"r(?P<major>\d+)_(?P<minor>\d+)_(?P<patch>\d+)" + _SUFFIXES)
_LEGACY = re.compile(r"r(?P<major>\d\d)(?P<minor>\d)")
_WEEKLY = re.compile(r"w_(?P<year>\d+)_(?P<week>\d+)" + _SUFFIXES)
_DAILY = re.compile(r"d_(?P<year>\d+)_(?P<month>\d+)_(?P<day>\d+)" + _SUFFIXES)
_EXPERIMENTAL = re.compile(r"exp_(?P<rest>.+)", re.DOTALL)
_UNKNOWN_CYCLE = re.compile(r"(?P<base>.+?)_c(?P<cycle>\d+)" + _ARCH, re.DOTALL)
_UNKNOWN = re.compile(r"(?P<base>.*?)" + _ARCH, re.DOTALL)


def _decorations(m: re.Match[str], *, cycle_only: bool = False) -> str:
    groups = m.groupdict()
    text = ""
    if groups.get("cycle") is not None:
        if cycle_only or groups.get("cbuild") is None:
            text += f" (SAL Cycle {groups['cycle']})"
        else:
            text += f" (SAL Cycle {groups['cycle']}, Build {groups['cbuild']})"
    if groups.get("rsp") is not None:
        text += f" (RSP Build {groups['rsp']})"
    if groups.get("extra") is not None:
        text += f" [{groups['extra']}]"
    if groups.get("arch") is not None:
        text += f" [{groups['arch']}]"
    return text


def _int(m: re.Match[str], name: str) -> int | None:
    value = m.groupdict().get(name)
    return int(value) if value is not None else None


def _suffix_fields(m: re.Match[str]) -> dict[str, Any]:
    return {
        "cycle": _int(m, "cycle"),
        "cycle_build": _int(m, "cbuild"),
        "build": _int(m, "rsp"),
        "extra": m.groupdict().get("extra"),
        "architecture": m.groupdict().get("arch"),
    }


def _release(tag: str, m: re.Match[str], image_type: ImageType) -> ParsedTag:
    version = Version(int(m["major"]), int(m["minor"]), int(m["patch"]), m.groupdict().get("pre"))
    text = f"r{version}"
    return ParsedTag(
        tag=tag,
        image_type=image_type,
        display_name=f"{image_type.value} {text}{_decorations(m)}",
        version=version,
        semantic=True,
        **_suffix_fields(m),
    )


def _legacy(tag: str, m: re.Match[str]) -> ParsedTag:
    version = Version(int(m["major"]), int(m["minor"]), 0)
    return ParsedTag(
        tag=tag,
        image_type=ImageType.RELEASE,
        display_name=f"Release r{version}",
        version=version,
        semantic=True,
    )


def _weekly(tag: str, m: re.Match[str]) -> ParsedTag:
    year, week = int(m["year"]), int(m["week"])
    when = date.fromisocalendar(year, week, 4)
    return ParsedTag(
        tag=tag,
        image_type=ImageType.WEEKLY,
        display_name=f"Weekly {m['year']}_{m['week']}{_decorations(m)}",
        version=Version(year, week, 0),
        date=datetime(when.year, when.month, when.day, tzinfo=UTC),
        **_suffix_fields(m),
    )


def _daily(tag: str, m: re.Match[str]) -> ParsedTag:
    year, month, day = int(m["year"]), int(m["month"]), int(m["day"])
    return ParsedTag(
        tag=tag,
        image_type=ImageType.DAILY,
        display_name=f"Daily {m['year']}_{m['month']}_{m['day']}{_decorations(m)}",
        version=Version(year, month, day),
        date=datetime(year, month, day, tzinfo=UTC),
        **_suffix_fields(m),
    )


def _unknown(tag: str, m: re.Match[str], image_type: ImageType = ImageType.UNKNOWN) -> ParsedTag:
    base = m["base"]
    return ParsedTag(
        tag=tag,
        image_type=image_type,
        display_name=f"{base}{_decorations(m, cycle_only=True)}",
        base=base,
        cycle=_int(m, "cycle"),
        architecture=m.groupdict().get("arch"),
    )


def _experimental(tag: str, m: re.Match[str]) -> ParsedTag:
    rest, depth = m["rest"], 1
    while (inner := _EXPERIMENTAL.fullmatch(rest)) is not None:  # exp_exp_…: no recursion
        rest, depth = inner["rest"], depth + 1
    parsed = _parse_typed(rest)
    return parsed.with_type(
        ImageType.EXPERIMENTAL,
        tag=tag,
        display_name="Experimental " * depth + parsed.display_name,
    )


def _parse_typed(tag: str) -> ParsedTag:
    """Apply the recognition rules in order; the first that matches and builds wins."""
    rules = (
        (_CANDIDATE, lambda t, m: _release(t, m, ImageType.CANDIDATE)),
        (_RELEASE, lambda t, m: _release(t, m, ImageType.RELEASE)),
        (_LEGACY, _legacy),
        (_WEEKLY, _weekly),
        (_DAILY, _daily),
        (_EXPERIMENTAL, _experimental),
        (_UNKNOWN_CYCLE, _unknown),
    )
    for pattern, build in rules:
        match = pattern.fullmatch(tag)
        if match is None:
            continue
        try:
            return build(tag, match)
        except (ValueError, OverflowError):
            continue
    match = _UNKNOWN.fullmatch(tag)
    assert match is not None  # the last rule always matches
    return _unknown(tag, match)


def parse_tag(tag: str) -> ParsedTag:
    """Parse a tag by the rules of reference section 1.3; never raises.

    An empty tag is Docker's implicit ``latest``.
    """
    return _parse_typed(tag or "latest")


def parse_alias_tag(tag: str) -> ParsedTag:
    """Parse a configured alias tag (``recommendedTag``, ``aliasTags``); never raises."""
    try:
        return _alias(tag, _UNKNOWN_CYCLE.fullmatch(tag) or _UNKNOWN.fullmatch(tag))
    except ValueError:  # a cycle number too long for int(): no cycle then
        return _alias(tag, _UNKNOWN.fullmatch(tag))


def _alias(tag: str, match: re.Match[str] | None) -> ParsedTag:
    assert match is not None  # the Unknown rule always matches
    base = match["base"]
    name = base.replace("_", " ").title()
    if match.groupdict().get("cycle") is not None:
        name += f" (SAL Cycle {match['cycle']})"
    if match.groupdict().get("arch") is not None:
        name += f" [{match['arch']}]"
    return ParsedTag(
        tag=tag,
        image_type=ImageType.ALIAS,
        display_name=name,
        base=base,
        cycle=_int(match, "cycle"),
        architecture=match.groupdict().get("arch"),
    )
