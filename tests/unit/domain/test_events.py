"""Events: stable stored names, the tagged union in the converter, upgrades on read."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings

from tests.support.events import T0, any_event
from worker import event_upgrades
from worker.converter import converter, structure
from worker.domain.events import (
    EVENT_CLASSES,
    Event,
    NodeGone,
    NodeSeen,
    PrepullSucceeded,
    TagDiscovered,
    event_class,
    stream_of,
)

STORED_NAMES = {
    "RefreshStarted": "refresh.started",
    "TagDiscovered": "tag.discovered",
    "TagResolved": "tag.resolved",
    "TagMoved": "tag.moved",
    "TagRemoved": "tag.removed",
    "RefreshCompleted": "refresh.completed",
    "RefreshFailed": "refresh.failed",
    "NodeSeen": "node.seen",
    "NodeInventoryObserved": "node.inventory_observed",
    "NodeGone": "node.gone",
    "PrepullRequested": "prepull.requested",
    "PrepullSucceeded": "prepull.succeeded",
    "PrepullFailed": "prepull.failed",
    "PrepullParked": "prepull.parked",
    "PrepullUnparked": "prepull.unparked",
    "PolicyConfigured": "policy.configured",
}


def test_stored_names_never_change() -> None:
    """STYLE rule 5: a stored name is a constant, not an import path, and never renamed."""
    assert {cls.__name__: cls.TYPE for cls in EVENT_CLASSES} == STORED_NAMES
    assert all(cls.VERSION == 1 for cls in EVENT_CLASSES)
    assert event_class("node.gone") is NodeGone


@settings(max_examples=150, deadline=None)
@given(any_event())
def test_round_trip_through_json(event: Event) -> None:
    tagged = converter.unstructure(event, Event)
    assert tagged["type"] == type(event).TYPE
    assert tagged["version"] == type(event).VERSION
    back: Event = converter.structure(json.loads(json.dumps(tagged)), Event)  # type: ignore[arg-type]
    assert back == event
    assert type(back) is type(event)


def test_tagged_form() -> None:
    at = datetime(2077, 1, 1, tzinfo=UTC)  # no log: the form only
    event = TagDiscovered(
        registry="r.test", repository="lsst/sciplat", tag="w_2077_43", digest=None, occurred_at=at
    )
    assert converter.unstructure(event, Event) == {
        "type": "tag.discovered",
        "version": 1,
        "data": {
            "registry": "r.test",
            "repository": "lsst/sciplat",
            "tag": "w_2077_43",
            "digest": None,
            "occurred_at": "2077-01-01T00:00:00+00:00",
        },
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"type": "tag.exploded", "version": 1, "data": {}}, "unknown event type"),
        ({"type": "node.gone", "version": 2, "data": {}}, "newer than this code"),
        ({"type": "node.gone", "version": 1}, "exactly the keys"),
        ({"type": "node.gone", "version": "1", "data": {}}, "version must be an integer"),
        (
            {"type": "node.gone", "version": 1, "data": {"node": "n", "occurred_at": "2077-01-01"}},
            "no time zone",
        ),
        (
            {
                "type": "node.gone",
                "version": 1,
                "data": {"node": "n", "occurred_at": "2077-01-01T00:00Z", "extra": 1},
            },
            "extra",
        ),
    ],
)
def test_bad_stored_events_are_refused_with_a_reason(payload: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        structure(payload, Event, "event")  # type: ignore[arg-type]


def test_naive_times_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        NodeGone(node="n", occurred_at=datetime(2077, 1, 1))


def test_old_payloads_are_upgraded_on_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A v0 ``node.gone`` called the node ``name``; an upgrader renames it on read."""
    monkeypatch.setitem(
        event_upgrades.UPGRADERS,
        ("node.gone", 0),
        lambda data: {"node": data["name"], "occurred_at": data["occurred_at"]},
    )
    stored = {"type": "node.gone", "version": 0, "data": {"name": "n1", "occurred_at": T0}}
    upgraded: Event = converter.structure(stored, Event)  # type: ignore[arg-type]
    assert upgraded == NodeGone(node="n1", occurred_at=T0)
    with pytest.raises(ValueError, match="no upgrade"):
        event_upgrades.upgrade_payload("node.seen", 0, {}, 1)


def test_an_upgrader_is_registered_once() -> None:
    event_upgrades.upgrader("test.only", 7)(lambda data: data)
    try:
        with pytest.raises(ValueError, match="already exists"):
            event_upgrades.upgrader("test.only", 7)(lambda data: data)
    finally:
        del event_upgrades.UPGRADERS[("test.only", 7)]


def test_streams() -> None:
    seen = NodeSeen(node="n1", eligible=True, occurred_at=T0)
    pulled = PrepullSucceeded(
        registry="r", repository="p", digest="sha256:a", node="n1", occurred_at=T0
    )
    tag = TagDiscovered(registry="r", repository="p", tag="t", digest=None, occurred_at=T0)
    assert [stream_of(e) for e in (seen, pulled, tag)] == ["node:n1", "prepull:n1", "repo:r/p"]
