"""Strict structuring: the hooks every converter starts from, and readable validation errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.preconf.json import make_converter as make_json_converter

from worker.domain.durations import parse_duration
from worker.domain.errors import InvalidInputError

__all__ = [
    "ValidationError",
    "camel_case",
    "describe_error",
    "one_spelling",
    "register_camel_case",
    "strict_converter",
]


class ValidationError(InvalidInputError, ValueError):
    """Input that does not fit its schema; the message names the bad key path (a ValueError
    too, as callers of a parser expect)."""


def _structure_datetime(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise TypeError(f"expected an ISO 8601 timestamp, got {type(value).__name__}")
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return parsed.astimezone(UTC)


def _structure_timedelta(value: Any, _: type) -> timedelta:
    if isinstance(value, bool):
        raise TypeError("expected a duration, got a boolean")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        return parse_duration(value)
    raise TypeError(f"expected a duration such as '5m', got {type(value).__name__}")


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _structure_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _structure_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {type(value).__name__}")
    return value


def strict_converter() -> cattrs.Converter:
    """A converter that rejects unknown keys, requires aware datetimes, reads durations
    (``5m`` or seconds) and never coerces: an integer is not a string, nor a string a
    boolean."""
    conv = make_json_converter(forbid_extra_keys=True, prefer_attrib_converters=False)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime, lambda d: d.isoformat())
    conv.register_structure_hook(timedelta, _structure_timedelta)
    conv.register_unstructure_hook(timedelta, lambda d: d.total_seconds())
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    return conv


def camel_case(name: str) -> str:
    """``num_weeklies`` -> ``numWeeklies``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _camel_renames(cls: type) -> dict[str, Any]:
    return {
        a.name: override(rename=camel_case(a.name))
        for a in attrs.fields(cls)
        if not a.name.startswith("_")
    }


def one_spelling(value: Any, names: Iterable[str]) -> Any:
    """A mapping with each snake_case key of ``names`` renamed to its camelCase spelling
    (the reference's models accept both); a key given in both spellings is an error
    naming it. Anything else is returned as it is."""
    if not isinstance(value, dict):
        return value
    renamed = dict(value)
    for name in names:
        camel = camel_case(name)
        if camel == name or name not in value:
            continue
        if camel in value:
            raise ValueError(f"{name!r} and {camel!r} are the same key: give only one of them")
        renamed[camel] = renamed.pop(name)
    return renamed


def register_camel_case(conv: cattrs.Converter, classes: Iterable[type]) -> None:
    """Read these attrs classes with camelCase keys (the reference's YAML) or their
    snake_case spelling, and write them with camelCase keys; the hooks are generated on
    first use."""
    camel = frozenset(classes)

    def structure_factory(cls: type) -> Any:
        structure: Callable[[Any, Any], Any] = make_dict_structure_fn(
            cls, conv, _cattrs_forbid_extra_keys=True, **_camel_renames(cls)
        )
        names = [a.name for a in attrs.fields(cls) if not a.name.startswith("_")]
        return lambda value, type_: structure(one_spelling(value, names), type_)

    def unstructure_factory(cls: type) -> Any:
        return make_dict_unstructure_fn(cls, conv, **_camel_renames(cls))

    conv.register_structure_hook_factory(lambda t: t in camel, structure_factory)
    conv.register_unstructure_hook_factory(lambda t: t in camel, unstructure_factory)


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, TypeError | ValueError) and not isinstance(exc, cattrs.BaseValidationError):
        message = str(exc)
        if message and "__init__()" not in message and "missing" not in message:
            return message
    return cattrs.v.format_exception(exc, type_)


_PATH_PART = re.compile(
    r"""(\['(?:[^'\\]|\\.)*'\]|\["(?:[^"\\]|\\.)*"\]|\[\d+\])|\.([A-Za-z_]\w*)"""
)
"""A path's mapping keys and indices (kept as written) or its attribute names."""


def _camel_path(line: str) -> str:
    """The attribute names of a path in camelCase; mapping keys stay as written."""
    message, sep, path = line.rpartition(" @ ")
    if not sep:
        return line

    def part(match: re.Match[str]) -> str:
        return match.group(1) or "." + camel_case(match.group(2))

    return f"{message} @ {_PATH_PART.sub(part, path)}"


def describe_error(exc: BaseException, *, camel: bool = False) -> str:
    """One readable line per problem, each naming the key path (camelCase for YAML)."""
    if isinstance(exc, cattrs.BaseValidationError):
        lines = cattrs.transform_error(exc, path="$", format_exception=_format_exception)
        return "; ".join(_camel_path(x) if camel else x for x in lines)
    return str(exc)
