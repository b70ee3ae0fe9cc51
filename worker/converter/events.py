"""Events as a tagged union: the shape stored in ``ledger.events`` and how it is read back."""

from __future__ import annotations

from typing import Any

import cattrs

from worker.domain.events import EVENT_CLASSES, Event
from worker.event_upgrades import upgrade_payload

__all__ = ["register_events"]

_ENVELOPE = frozenset(("type", "version", "data"))


def register_events(conv: cattrs.Converter) -> None:
    """Events as ``{"type": name, "version": n, "data": {...}}``.

    ``conv.unstructure(event, Event)`` gives the tagged form stored in ``ledger.events``
    (``type``, ``version`` and ``data`` columns); ``conv.structure(tagged, Event)`` reads it
    back, upgrading an older payload first (``worker.event_upgrades``). A plain
    ``conv.unstructure(event)`` gives just the payload.
    """
    by_name = {cls.TYPE: cls for cls in EVENT_CLASSES}

    def structure_event(value: Any, _: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected an event object, got {type(value).__name__}")
        if set(value) != _ENVELOPE:
            raise ValueError(
                f"an event has exactly the keys type, version, data; got {sorted(value)}"
            )
        name, version, data = value["type"], value["version"], value["data"]
        cls = by_name.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ValueError(f"unknown event type {name!r}")
        if isinstance(version, bool) or not isinstance(version, int):
            raise TypeError(f"event version must be an integer, got {version!r}")
        if not isinstance(data, dict):
            raise TypeError(f"event data must be an object, got {type(data).__name__}")
        return conv.structure(upgrade_payload(name, version, data, cls.VERSION), cls)

    def unstructure_event(event: Any) -> dict[str, Any]:
        cls = type(event)
        return {"type": cls.TYPE, "version": cls.VERSION, "data": conv.unstructure(event, cls)}

    conv.register_structure_hook_func(lambda t: t == Event, structure_event)
    conv.register_unstructure_hook_func(lambda t: t == Event, unstructure_event)
