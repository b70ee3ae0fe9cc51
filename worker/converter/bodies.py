"""Message bodies: bytes to validated messages and back, with the reason a body is refused."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import cattrs

from worker.converter.core import converter
from worker.converter.strict import describe_error
from worker.domain.errors import MessageRejected
from worker.domain.field_rules import string_problem
from worker.domain.message_rules import check_inbound
from worker.domain.messages import (
    CONSUMED_MESSAGES,
    INBOUND_MESSAGES,
    MAX_MESSAGE_BYTES,
    OUTBOUND_MESSAGES,
    ConsumedMessage,
    InboundMessage,
    InvalidFieldError,
    OutboundMessage,
)

__all__ = ["decode_delivery", "decode_message", "decode_outbound_message", "encode_message"]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_JSON = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)
"""Strict JSON: duplicate keys and NaN/Infinity refused (built once: ``json.loads`` with
hooks would build a decoder for every body)."""


def _text(body: bytes) -> str:
    """``body`` decoded as ``json.loads`` decodes bytes (UTF-8, with or without a BOM, or
    UTF-16/32; surrogates encoded in the bytes pass through, to be refused by the walk)."""
    return body.decode(json.detect_encoding(body), "surrogatepass")


def _json_kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", int: "a number"}
    kinds |= {float: "a number", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def _bad_string(data: Any, path: str = "$") -> str | None:
    """The first string (key or value) of decoded JSON that PostgreSQL cannot store, as
    ``problem @ path``: a NUL character or an unpaired surrogate (``"\\ud800"``)."""
    if isinstance(data, str):
        problem = string_problem(data)
        return None if problem is None else f"{problem} @ {path}"
    if isinstance(data, dict):
        for key, value in data.items():
            problem = string_problem(key)
            if problem is not None:
                return f"key {problem} @ {path}"
            found = _bad_string(
                value, f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"
            )
            if found is not None:
                return found
    elif isinstance(data, list):
        for i, item in enumerate(data):
            found = _bad_string(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _message_error(exc: BaseException) -> str:
    if isinstance(exc, cattrs.ClassValidationError):
        own = [e for e in exc.exceptions if isinstance(e, InvalidFieldError)]
        if own:
            return "; ".join(f"{e.problem} @ $.{e.field}" for e in own)
    return describe_error(exc).replace(".size_bytes", ".sizeBytes")


def _decode(messages: Mapping[str, type[Any]], routing_key: str, body: bytes) -> Any:
    cls = messages.get(routing_key)
    if cls is None:
        raise MessageRejected(f"unknown routing key {routing_key!r}")
    if len(body) > MAX_MESSAGE_BYTES:
        raise MessageRejected(
            f"body of {len(body)} bytes is over the limit of {MAX_MESSAGE_BYTES} bytes"
        )
    try:
        text = _text(body)
        data = _JSON.decode(text)
    except (ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise MessageRejected(f"malformed JSON: {detail}") from exc
    if not isinstance(data, dict):
        raise MessageRejected(f"expected a JSON object, got {_json_kind(data)} @ $")
    # In ASCII text a NUL or a lone surrogate can only come from a \u escape (JSON refuses
    # raw control characters): without one, nothing needs the walk. Other text is walked.
    bad = _bad_string(data) if "\\u" in text or not text.isascii() else None
    if bad is not None:
        raise MessageRejected(bad)
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        raise MessageRejected(" ".join(_message_error(exc).splitlines())) from exc


def decode_message(routing_key: str, body: bytes) -> InboundMessage:
    """Decode and validate an inbound message; raise MessageRejected naming the problem.

    Rejected: unknown routing keys, bodies over 1 MiB, malformed JSON (including NaN and
    duplicate keys), non-object bodies, strings with a NUL or an unpaired surrogate, unknown
    fields, wrong types, timestamps without a zone or before 2000, bad references and
    references without a digest where one is required, digests that are not OCI's, names
    and labels that Kubernetes would refuse, sizes outside bigint, overlong reasons.
    """
    message: InboundMessage = _decode(INBOUND_MESSAGES, routing_key, body)
    try:
        check_inbound(message)
    except InvalidFieldError as exc:
        raise MessageRejected(f"{exc.problem} @ $.{exc.field}") from exc
    return message


def decode_delivery(routing_key: str, body: bytes) -> ConsumedMessage:
    """Decode what a work queue delivers (an inbound message, or the bridge's
    ``prepull.requested``), as strictly as ``decode_message`` (inbound messages are
    checked by its rules too)."""
    if routing_key in INBOUND_MESSAGES:
        return decode_message(routing_key, body)
    message: ConsumedMessage = _decode(CONSUMED_MESSAGES, routing_key, body)
    return message


def decode_outbound_message(routing_key: str, body: bytes) -> OutboundMessage:
    """Decode a message the worker publishes (for its consumers and tests), as strictly."""
    message: OutboundMessage = _decode(OUTBOUND_MESSAGES, routing_key, body)
    return message


def encode_message(message: InboundMessage | OutboundMessage) -> bytes:
    """The JSON body of a message (UTF-8, compact, field order as declared)."""
    data = converter.unstructure(message)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
