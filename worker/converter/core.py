"""The converter itself: one for events, messages and input files, one for the YAML config."""

from __future__ import annotations

from typing import Any, TypeVar

import cattrs

from worker.converter.config import register_config
from worker.converter.events import register_events
from worker.converter.inputs import register_inputs, register_message_fields
from worker.converter.strict import ValidationError, describe_error, strict_converter

__all__ = ["config_converter", "converter", "structure"]

T = TypeVar("T")


def _make_converter(*, camel_case: bool = False) -> cattrs.Converter:
    """The strict converter with our hooks.

    ``camel_case`` gives the YAML converter, where the configuration classes take camelCase
    keys; events and messages always use the snake_case converter, so their stored shape
    never depends on the configuration's.
    """
    conv = strict_converter()
    register_inputs(conv)
    if camel_case:
        register_config(conv)
        return conv
    register_events(conv)
    register_message_fields(conv)
    return conv


converter = _make_converter()
"""Events, messages, input files: snake_case keys."""
config_converter = _make_converter(camel_case=True)
"""The configuration's YAML: camelCase keys, as the reference writes them."""


def structure(data: Any, cls: type[T], what: str = "input", *, camel: bool = False) -> T:
    """Structure ``data`` as ``cls``; raise ValidationError naming every bad path.

    ``camel`` uses the configuration converter and names paths in camelCase.
    """
    try:
        return (config_converter if camel else converter).structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        raise ValidationError(f"invalid {what}: {describe_error(exc, camel=camel)}") from exc
