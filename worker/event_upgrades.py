"""Upgrades of stored event payloads, applied on read by the converter, one version at a time.

A stored event keeps the payload it was written with. When an event class changes shape, its
``VERSION`` goes up by one and an upgrader is registered here, keyed by the stored type name
and the version it upgrades *from*: a plain function from the old payload dict to the next
version's dict. Readers then see only current shapes; the log itself is never rewritten.

Example, for a future ``node.seen`` version 2 that renames ``comment`` to ``reason``::

    @upgrader("node.seen", 1)
    def _node_seen_v1(data: Payload) -> Payload:
        data = dict(data)
        data["reason"] = data.pop("comment", None)
        return data
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

__all__ = ["UPGRADERS", "Payload", "upgrade_payload", "upgrader"]

Payload: TypeAlias = dict[str, Any]

UPGRADERS: dict[tuple[str, int], Callable[[Payload], Payload]] = {}
"""(stored type name, from version) -> function returning the payload of version + 1."""


def upgrader(
    type_name: str, from_version: int
) -> Callable[[Callable[[Payload], Payload]], Callable[[Payload], Payload]]:
    """Register a function upgrading ``type_name`` payloads from ``from_version``."""

    def register(function: Callable[[Payload], Payload]) -> Callable[[Payload], Payload]:
        key = (type_name, from_version)
        if key in UPGRADERS:
            raise ValueError(f"an upgrader for {type_name} v{from_version} already exists")
        UPGRADERS[key] = function
        return function

    return register


def upgrade_payload(type_name: str, version: int, data: Payload, target: int) -> Payload:
    """Bring a stored payload from ``version`` up to ``target``.

    Raises ValueError when a step is missing or the payload is newer than this code.
    """
    if version > target:
        raise ValueError(
            f"event {type_name} v{version} is newer than this code understands (v{target})"
        )
    while version < target:
        step = UPGRADERS.get((type_name, version))
        if step is None:
            raise ValueError(f"no upgrade for event {type_name} from v{version}")
        data = step(data)
        version += 1
    return data
