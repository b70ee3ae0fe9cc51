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
from worker.domain.message_rules import check_clock
from worker.domain.messages import (
    MAX_MESSAGE_BYTES,
    MESSAGE_ID_REUSED,
    Arrivals,
    Delivery,
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
    sort_arrivals,
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


INVENTORY_2024 = {**NODE_INVENTORY, "observed_at": "2024-01-01T00:00:00Z"}


def _image(names: list[str], size: int = 1) -> list[dict[str, Any]]:
    return [{"names": names, "sizeBytes": size}]


@pytest.mark.parametrize(
    ("routing_key", "raw", "expected"),
    [
        ("node.inventory", with_(INVENTORY_2024, node="Node_1"),
         "not a DNS-1123 subdomain @ $.node"),
        ("node.inventory", with_(INVENTORY_2024, node="n" * 254),
         "at most 253 characters, got 254 @ $.node"),
        ("node.gone", body({"node": "a..b", "observed_at": "2024-01-01T00:00:00Z"}),
         "not a DNS-1123 subdomain @ $.node"),
        ("node.inventory", with_(INVENTORY_2024, labels={"bad key": "x"}),
         "not a qualified name @ $.labels['bad key']"),
        ("node.inventory", with_(INVENTORY_2024, labels={"Example.com/zone": "a"}),
         "key prefix 'Example.com' is not a DNS-1123 subdomain @ $.labels['Example.com/zone']"),
        ("node.inventory", with_(INVENTORY_2024, labels={"zone": "v" * 64}),
         "value must be at most 63 characters, got 64 @ $.labels['zone']"),
        ("node.inventory", with_(INVENTORY_2024, labels={"zone": "-a"}),
         "not a valid label value @ $.labels['zone']"),
        ("node.inventory", with_(INVENTORY_2024, taints=[{"key": "k", "effect": "Never"}]),
         "effect 'Never' is not one of NoSchedule, PreferNoSchedule, NoExecute"
         " @ $.taints[0].effect"),
        ("node.inventory", with_(INVENTORY_2024, taints=[{"key": "k/", "effect": "NoSchedule"}]),
         "key name must not be empty @ $.taints[0].key"),
        ("node.inventory", with_(INVENTORY_2024, images=_image(["r.io/a@sha256:zz"])),
         "digest 'sha256:zz' is not sha256: and 64 lowercase hex digits @ $.images[0].names[0]"),
        ("node.inventory", with_(INVENTORY_2024, images=_image(["r.io/a", "x" * 1025])),
         "must be at most 1024 characters @ $.images[0].names[1]"),
        ("node.inventory", with_(INVENTORY_2024, images=_image([], -1)),
         "size -1 is out of range @ $.images[0].sizeBytes"),
        ("node.inventory", with_(INVENTORY_2024, images=_image([], 2**63)),
         "size 9223372036854775808 is out of range @ $.images[0].sizeBytes"),
        ("node.inventory", with_(INVENTORY_2024, observed_at="1970-01-01T00:00:00Z"),
         "time 1970-01-01T00:00:00+00:00 is before 2000-01-01 @ $.observed_at"),
        ("node.inventory", with_(INVENTORY_2024, labels={"zone": "a\x00b"}),
         "contains a NUL character at offset 1 @ $.labels.zone"),
        ("node.inventory", b'{"node": "n\\ud800", "observed_at": "2024-01-01T00:00:00Z"}',
         "contains an unpaired surrogate at offset 1 @ $.node"),
        ("node.inventory", b'{"node": "n", "observed_at": "2024-01-01T00:00:00Z", "x\\u0000": 1}',
         "key contains a NUL character at offset 1 @ $"),
        # a surrogate encoded as raw bytes (not valid UTF-8): parsed as json.loads does, walked
        ("node.inventory", b'{"node": "n\xed\xa0\x80", "observed_at": "2024-01-01T00:00:00Z"}',
         "contains an unpaired surrogate at offset 1 @ $.node"),
        ("node.inventory", '{"node": "n", "observed_at": "2024-01-01T00:00:00Z", "é\\u0000": 1}'
         .encode(), "key contains a NUL character at offset 1 @ $"),
        ("prepull.pod_completed", with_(POD_COMPLETED, image=f"r.io/a:t@sha256:{'A' * 64}"),
         "is not sha256: and 64 lowercase hex digits (or sha512: and 128) @ $.image"),
        ("prepull.pod_completed", with_(POD_COMPLETED, image="r.io/a:t@md5:" + "0" * 32),
         "digest 'md5:00000000000000000000000000000000' is not sha256: @ $.image"),
        ("prepull.pod_completed", with_(POD_COMPLETED, pod="P" * 10),
         "not a DNS-1123 subdomain @ $.pod"),
        ("prepull.pod_completed", with_(POD_COMPLETED, pod="p" * 300),
         "at most 253 characters, got 300 @ $.pod"),
        ("prepull.pod_completed", with_(POD_COMPLETED, succeeded=False, reason="r" * 2049),
         "must be at most 2048 characters, got 2049 @ $.reason"),
        ("prepull.pod_completed", with_(POD_COMPLETED, finished_at="1999-12-31T23:59:59Z"),
         "is before 2000-01-01 @ $.finished_at"),
        ("refresh.request", body({"reason": "x" * 3000}), "at most 2048 characters @ $.reason"),
        ("refresh.request", body({"requested_at": "0001-01-01T00:00:00Z"}),
         "is before 2000-01-01 @ $.requested_at"),
    ],
)  # fmt: skip
def test_rejects_values_postgresql_or_kubernetes_would_refuse(
    routing_key: str, raw: bytes, expected: str
) -> None:
    text = reason(routing_key, raw)
    parts = expected.split(" @ ")
    assert parts[0] in text
    assert text.endswith(f" @ {parts[1]}"), text


def test_accepts_the_largest_values_within_the_rules() -> None:
    inventory = {
        **INVENTORY_2024,
        "node": ".".join(["a" * 63] * 3) + "." + "b" * 61,  # 253 characters
        "labels": {"example.com/" + "k" * 63: "v" * 63, "empty": ""},
        "images": _image([f"r.io/a@sha512:{'0' * 128}"], 2**63 - 1),
    }
    message = decode_message("node.inventory", body(inventory))
    assert isinstance(message, NodeInventory)
    assert len(message.node) == 253


def test_a_time_ahead_of_the_clock_is_refused_beyond_the_skew() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    skew = timedelta(minutes=5)
    message = decode_message("node.inventory", body(INVENTORY_2024))
    check_clock(message, now + timedelta(minutes=-5), skew)  # 5 minutes ahead: accepted
    with pytest.raises(InvalidFieldError) as caught:
        check_clock(message, now - timedelta(minutes=5, seconds=1), skew)
    assert caught.value.field == "observed_at"
    assert "is more than 5m ahead of the worker's clock" in caught.value.problem
    far = decode_message(
        "prepull.pod_completed", with_(POD_COMPLETED, finished_at="9999-01-01T00:00:00Z")
    )
    with pytest.raises(InvalidFieldError, match=r"^finished_at: time 9999"):
        check_clock(far, now, skew)
    check_clock(RefreshRequested(), now, skew)  # no time: nothing to check


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

_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
_name = st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True)
_label = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?", fullmatch=True)
_label_key = st.builds(lambda p, n: f"{p}/{n}" if p else n, st.none() | _name, _label)
_zones = st.sampled_from([UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5))])
_aware = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(2200, 1, 1), timezones=_zones
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
_image_name = _reference.map(str) | _text.filter(lambda t: "@" not in t)
_images = st.builds(KubeletImage, st.lists(_image_name, max_size=3).map(tuple), _sizes)
_effects = st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"])
_taints = st.builds(Taint, key=_label_key, effect=_effects, value=st.none() | _label)

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
        labels=st.dictionaries(_label_key, _label | st.just(""), max_size=4),
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


# --------------------------------------------------------------------------- one id, one effect


def _delivery(message_id: str, body: str | None) -> Delivery:
    return Delivery(RefreshRequested(), message_id, "refresh.request", body_sha256=body)


def test_arrivals_sort_fresh_repeated_and_reused_ids() -> None:
    batch = [
        _delivery("a", "1"),  # folded before with this body
        _delivery("b", "2"),  # folded before with another body
        _delivery("c", "3"),  # new
        _delivery("c", "3"),  # the same again, in this batch
        _delivery("c", "4"),  # another body under the batch's own new id
        _delivery("d", None),  # no body hash known: always folded
    ]
    arrivals = sort_arrivals(batch, {"a": "1", "b": "9"})
    assert arrivals == Arrivals(fresh=(2, 5), repeated=(0, 3), reused=(1, 4))
    assert MESSAGE_ID_REUSED == "message id reused with a different body"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_bodies_decode_as_json_loads_decodes_bytes(encoding: str) -> None:
    """A BOM or a UTF-16/32 body reads as the same message (json.loads accepts them)."""
    text = body(POD_COMPLETED).decode()
    expected = decode_message("prepull.pod_completed", text.encode())
    assert decode_message("prepull.pod_completed", text.encode(encoding)) == expected


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-32-be", "utf-8-sig"])
def test_an_escaped_nul_is_refused_whatever_the_encoding(encoding: str) -> None:
    raw = with_(INVENTORY_2024, labels={"zone": "a\x00b"}).decode().encode(encoding)
    with pytest.raises(MessageRejected, match=r"NUL character at offset 1 @ \$\.labels\.zone"):
        decode_message("node.inventory", raw)
