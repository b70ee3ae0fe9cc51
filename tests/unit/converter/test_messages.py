"""Message bodies: strict decoding with readable reasons, and encode/decode round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.converter import decode_message, decode_outbound_message, encode_message
from worker.domain.errors import MessageRejected
from worker.domain.messages import (
    MAX_MESSAGE_BYTES,
    ImagesChangedMessage,
    InboundMessage,
    InvalidFieldError,
    NodeInventory,
    OutboundMessage,
    PodCompleted,
    PrepullCompleteMessage,
    PrepullRequestedMessage,
    RefreshRequested,
    TaggedImage,
)
from worker.domain.nodes import KubeletImage, Taint
from worker.domain.references import DockerReference

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"registry.example.com/sqre/sciplat-lab:w_2077_01@{DIGEST}"

POD_COMPLETED = {
    "node": "node-1",
    "image": IMAGE,
    "pod": "prepull-abc",
    "succeeded": True,
    "finished_at": "2077-01-01T12:00:00Z",
}
NODE_INVENTORY = {
    "node": "node-1",
    "observed_at": "2077-01-01T12:00:00+01:00",
    "labels": {"kubernetes.io/hostname": "node-1"},
    "taints": [{"key": "dedicated", "value": "lab", "effect": "NoSchedule"}],
    "images": [
        {
            "names": [IMAGE, "registry.example.com/sqre/sciplat-lab:w_2077_01"],
            "sizeBytes": 123456789,
        }
    ],
    "unschedulable": False,
}


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def reason(routing_key: str, raw: bytes) -> str:
    with pytest.raises(MessageRejected) as caught:
        decode_message(routing_key, raw)
    return caught.value.reason


def test_decodes_a_pod_completion() -> None:
    message = decode_message("prepull.pod_completed", body(POD_COMPLETED))
    assert message == PodCompleted(
        node="node-1",
        image=DockerReference.parse(IMAGE),
        pod="prepull-abc",
        succeeded=True,
        finished_at=datetime(2077, 1, 1, 12, tzinfo=UTC),
    )


def test_decodes_a_node_inventory_as_kubernetes_reports_it() -> None:
    message = decode_message("node.inventory", body(NODE_INVENTORY))
    assert isinstance(message, NodeInventory)
    assert message.observed_at == datetime(2077, 1, 1, 11, tzinfo=UTC)
    assert message.taints == (Taint("dedicated", "NoSchedule", "lab"),)
    assert message.images[0] == KubeletImage(
        (IMAGE, "registry.example.com/sqre/sciplat-lab:w_2077_01"), 123456789
    )


def test_decodes_an_empty_refresh_request() -> None:
    assert decode_message("refresh.request", b"{}") == RefreshRequested()


def test_node_images_encode_with_the_kubernetes_key() -> None:
    message = decode_message("node.inventory", body(NODE_INVENTORY))
    encoded = json.loads(encode_message(message))
    assert encoded["images"][0] == NODE_INVENTORY["images"][0]  # type: ignore[index]
    assert set(encoded) == set(NODE_INVENTORY)


def with_(base: dict[str, Any], **changes: Any) -> bytes:
    return body({**base, **changes})


@pytest.mark.parametrize(
    ("routing_key", "raw", "expected"),
    [
        ("refresh.request", b"{not json", "malformed JSON"),
        ("refresh.request", b'{"reason": NaN}', "malformed JSON: NaN"),
        ("refresh.request", b'{"reason": "a", "reason": "b"}', "duplicate key 'reason'"),
        ("refresh.request", b"\xff\xfe\x00", "malformed JSON"),
        ("refresh.request", b"[]", "expected a JSON object, got an array @ $"),
        ("refresh.request", b'"refresh"', "expected a JSON object, got a string @ $"),
        ("refresh.request", b'{"force": true}', "extra fields found (force) @ $"),
        ("refresh.request", b'{"requested_at": "2077-01-01T00:00:00"}',
         "has no time zone @ $.requested_at"),
        ("refresh.request", b'{"requested_at": "yesterday"}', "@ $.requested_at"),
        ("audit.log", b"{}", "unknown routing key 'audit.log'"),
        ("prepull.pod_completed", with_(POD_COMPLETED, succeeded="yes"),
         "expected true or false, got str @ $.succeeded"),
        ("prepull.pod_completed", with_(POD_COMPLETED, image="not a reference"),
         "has no registry (expected registry/repository:tag) @ $.image"),
        ("prepull.pod_completed", with_(POD_COMPLETED, image="registry.example.com/Lab:1"),
         "invalid repository @ $.image"),
        ("prepull.pod_completed", with_(POD_COMPLETED, image="registry.example.com/lab:1"),
         'reference "registry.example.com/lab:1" has no digest @ $.image'),
        ("prepull.pod_completed", with_(POD_COMPLETED, succeeded=False),
         "required when succeeded is false @ $.reason"),
        ("prepull.pod_completed", with_(POD_COMPLETED, node=""), "must not be empty @ $.node"),
        ("prepull.pod_completed", body({k: v for k, v in POD_COMPLETED.items() if k != "pod"}),
         "required field missing @ $.pod"),
        ("node.inventory", with_(NODE_INVENTORY, images=[{"names": ["a/b"], "sizeBytes": "1"}]),
         "expected an integer, got str @ $.images[0].sizeBytes"),
        ("node.inventory", with_(NODE_INVENTORY, images=[{"names": [], "size_bytes": 1}]),
         "extra fields found (size_bytes) @ $.images[0]"),
        ("node.inventory", with_(NODE_INVENTORY, labels={"zone": 3}),
         "expected a string, got int @ $.labels['zone']"),
        ("node.inventory", with_(NODE_INVENTORY, taints=[{"key": "k"}]),
         "required field missing @ $.taints[0].effect"),
    ],
)  # fmt: skip
def test_rejects_with_a_reason_naming_the_field(
    routing_key: str, raw: bytes, expected: str
) -> None:
    text = reason(routing_key, raw)
    assert expected in text
    assert "\n" not in text


def test_rejects_bodies_over_one_mebibyte_before_parsing() -> None:
    raw = b'{"reason": "' + b"x" * MAX_MESSAGE_BYTES + b'"}'
    assert reason("refresh.request", raw).startswith(f"body of {len(raw)} bytes is over")


def test_rejects_deeply_nested_json() -> None:
    assert reason("refresh.request", b"[" * 100_000) == "malformed JSON: nested too deeply"


def test_domain_classes_validate_on_construction() -> None:
    with pytest.raises(InvalidFieldError, match="reason: required"):
        PodCompleted("n", DockerReference.parse(IMAGE), "p", False, datetime.now(UTC))
    with pytest.raises(InvalidFieldError, match="has no digest"):
        PrepullCompleteMessage(
            DockerReference.parse("r.io/a:1"), "1", DIGEST, (), datetime.now(UTC)
        )


def test_outbound_messages_decode_strictly() -> None:
    message = PrepullRequestedMessage(
        DockerReference.parse(IMAGE), "w_2077_01", DIGEST, "node-1", 2,
        datetime(2077, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    raw = encode_message(message)
    assert json.loads(raw)["image"] == IMAGE
    assert decode_outbound_message("prepull.requested", raw) == message
    with pytest.raises(MessageRejected, match="unknown routing key"):
        decode_outbound_message("prepull.pod_completed", raw)


# --------------------------------------------------------------------------- round trips

_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
_name = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
_zones = st.sampled_from([UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5))])
_aware = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=_zones
)
_digest = st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)
_reference = st.builds(
    lambda registry, repo, tag, digest: DockerReference(registry, repo, tag, digest),
    st.sampled_from(["registry.example.com", "localhost:5000", "ghcr.io"]),
    st.from_regex(r"[a-z0-9]+(/[a-z0-9]+){0,2}", fullmatch=True),
    st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
    _digest,
)
_sizes = st.none() | st.integers(min_value=0, max_value=2**53)
_images = st.builds(KubeletImage, st.lists(_text, max_size=3).map(tuple), _sizes)
_taints = st.builds(Taint, key=_text, effect=_text, value=st.none() | _text)

inbound_messages: st.SearchStrategy[InboundMessage] = st.one_of(
    st.builds(RefreshRequested, st.none() | _text, st.none() | _aware),
    st.builds(
        PodCompleted,
        node=_name,
        image=_reference,
        pod=_name,
        succeeded=st.just(True),
        finished_at=_aware,
        reason=st.none() | _text,
    ),
    st.builds(
        PodCompleted,
        node=_name,
        image=_reference,
        pod=_name,
        succeeded=st.just(False),
        finished_at=_aware,
        reason=_text.filter(bool),
    ),
    st.builds(
        NodeInventory,
        node=_name,
        observed_at=_aware,
        labels=st.dictionaries(_text, _text, max_size=4),
        taints=st.lists(_taints, max_size=3).map(tuple),
        images=st.lists(_images, max_size=4).map(tuple),
        unschedulable=st.booleans(),
    ),
)

_count = st.integers(min_value=0, max_value=10_000)
outbound_messages: st.SearchStrategy[OutboundMessage] = st.one_of(
    st.builds(PrepullRequestedMessage, _reference, _text, _digest, _name, _count, _aware),
    st.builds(
        PrepullCompleteMessage,
        _reference,
        _text,
        _digest,
        st.lists(_name, max_size=4).map(tuple),
        _aware,
    ),
    st.builds(
        ImagesChangedMessage,
        _name,
        _text,
        *([st.lists(_text, max_size=3).map(tuple)] * 7),
        st.none() | st.builds(TaggedImage, _text, st.none() | _digest),
        _aware,
    ),
)


@given(inbound_messages)
def test_inbound_round_trip(message: InboundMessage) -> None:
    assert decode_message(message.ROUTING_KEY, encode_message(message)) == message


@given(outbound_messages)
def test_outbound_round_trip(message: OutboundMessage) -> None:
    assert decode_outbound_message(message.ROUTING_KEY, encode_message(message)) == message
