"""The stand-in's storage: objects, one resource version counter, change history, watchers."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from attrs import define, field, frozen

__all__ = ["Change", "Selector", "Store", "Watcher"]


@frozen
class Change:
    """One stored change: its resource version, where, and the object's JSON after it."""

    rv: int
    kind: str
    namespace: str | None
    type: str
    obj: Mapping[str, Any]

    @property
    def labels(self) -> Mapping[str, str]:
        """The object's labels."""
        labels: Mapping[str, str] = self.obj.get("metadata", {}).get("labels") or {}
        return labels


@frozen
class Selector:
    """An equality-based label selector: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``."""

    equal: Mapping[str, str] = field(factory=dict)
    unequal: Mapping[str, str] = field(factory=dict)
    present: frozenset[str] = frozenset()
    absent: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str | None) -> Selector:
        """Parse a ``labelSelector`` query value (None or empty: everything)."""
        equal: dict[str, str] = {}
        unequal: dict[str, str] = {}
        present: set[str] = set()
        absent: set[str] = set()
        for term in (t.strip() for t in (text or "").split(",")):
            if not term:
                continue
            if "!=" in term:
                key, _, value = term.partition("!=")
                unequal[key.strip()] = value.strip()
            elif "=" in term:
                key, _, value = term.partition("=")
                equal[key.strip()] = value.lstrip("=").strip()
            elif term.startswith("!"):
                absent.add(term[1:].strip())
            else:
                present.add(term)
        return cls(equal, unequal, frozenset(present), frozenset(absent))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an object with ``labels`` is selected."""
        return (
            all(labels.get(k) == v for k, v in self.equal.items())
            and all(labels.get(k) != v for k, v in self.unequal.items())
            and all(k in labels for k in self.present)
            and all(k not in labels for k in self.absent)
        )


@define
class Watcher:
    """One open watch: what it wants, and the changes waiting to be sent (None: end)."""

    kind: str
    namespace: str | None
    selector: Selector
    queue: asyncio.Queue[Change | None] = field(factory=asyncio.Queue)

    def wants(self, change: Change) -> bool:
        """Whether this watch shows ``change``."""
        if change.kind != self.kind:
            return False
        if self.namespace is not None and change.namespace != self.namespace:
            return False
        return self.selector.matches(change.labels)


@define
class Store:
    """Objects by (kind, namespace, name), a global resource version as etcd keeps it, and
    the history of changes that watches replay. ``history_limit`` keeps only the newest
    changes; ``compacted`` is the version below which a watch gets 410."""

    dump: Callable[[Any], Any]
    history_limit: int | None = None
    rv: int = 1
    compacted: int = 0
    objects: dict[tuple[str, str | None, str], Any] = field(factory=dict)
    history: deque[Change] = field(factory=deque)
    watchers: list[Watcher] = field(factory=list)

    def get(self, kind: str, namespace: str | None, name: str) -> Any | None:
        """The stored model, or None."""
        return self.objects.get((kind, namespace, name))

    def items(self, kind: str, namespace: str | None, selector: Selector) -> Iterator[Any]:
        """Stored models of ``kind`` (in ``namespace`` unless None) that ``selector`` picks."""
        for (k, ns, _), obj in sorted(self.objects.items(), key=lambda kv: str(kv[0])):
            if k != kind or (namespace is not None and ns != namespace):
                continue
            if selector.matches(obj.metadata.labels or {}):
                yield obj

    def write(self, kind: str, namespace: str | None, obj: Any, *, delete: bool = False) -> None:
        """Record that ``obj`` was created, changed or deleted: a new resource version on
        it, a history entry, and the change sent to every watch that wants it."""
        key = (kind, namespace, obj.metadata.name)
        existed = key in self.objects
        self.rv += 1
        obj.metadata.resource_version = str(self.rv)
        if delete:
            self.objects.pop(key, None)
            change_type = "DELETED"
        else:
            self.objects[key] = obj
            change_type = "MODIFIED" if existed else "ADDED"
        change = Change(self.rv, kind, namespace, change_type, self.dump(obj))
        self.history.append(change)
        while self.history_limit is not None and len(self.history) > self.history_limit:
            self.compacted = self.history.popleft().rv
        for watcher in self.watchers:
            if watcher.wants(change):
                watcher.queue.put_nowait(change)

    def since(self, rv: int) -> list[Change]:
        """Changes after ``rv`` (the caller checked that ``rv`` is not compacted away)."""
        return [c for c in self.history if c.rv > rv]

    def compact(self) -> None:
        """Advance the version (as any write elsewhere in the cluster would), forget all
        history, and end every open watch: a watch resumed from before now gets 410."""
        self.rv += 1
        self.compacted = self.rv
        self.history.clear()
        self.end_watches()

    def end_watches(self) -> None:
        """End every open watch cleanly (as the API server does when a watch times out)."""
        for watcher in self.watchers:
            watcher.queue.put_nowait(None)
