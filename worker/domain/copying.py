"""Building one attrs value from another that shares some of its fields by name."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from attrs import fields

__all__ = ["copy_shared"]

T = TypeVar("T")


def copy_shared(cls: type[T], source: Any, **given: Any) -> T:
    """A ``cls`` (an attrs class) with the ``given`` values and, for every other field,
    the value ``source`` (an attrs instance) has under the same name; fields neither names
    keep their defaults. For settings built from a configuration section: a knob both
    name is carried over, never forgotten when one is added to both."""
    wanted = {f.name for f in fields(cast(Any, cls))} - given.keys()
    shared = wanted & {f.name for f in fields(type(source))}
    return cls(**{name: getattr(source, name) for name in shared}, **given)
