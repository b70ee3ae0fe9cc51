"""Every message example in the README's message table is a valid message of its routing key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from worker.converter import decode_message, decode_outbound_message, encode_message
from worker.domain.messages import INBOUND_MESSAGES, OUTBOUND_MESSAGES

README = Path(__file__).resolve().parents[3] / "README.md"
DIGEST = "sha256:" + "5f0c" * 16


def examples() -> list[tuple[str, str, str]]:
    """(routing key, direction, body) of each row of the README's message table."""
    text = README.read_text()
    section = text[text.index("## Messages (RabbitMQ)") :]
    section = section[: section.index("\n## ", 1)]
    rows = re.findall(r"^\| `([a-z._]+)` \| (in|out) \| `(.+)` \|$", section, flags=re.M)
    return [(key, direction, body.replace("sha256:…", DIGEST)) for key, direction, body in rows]


def test_the_table_shows_every_routing_key() -> None:
    keys = {key for key, _, _ in examples()}
    assert keys == set(INBOUND_MESSAGES) | set(OUTBOUND_MESSAGES)
    assert "node.gone" in keys


@pytest.mark.parametrize(("key", "direction", "body"), examples(), ids=lambda v: str(v)[:24])
def test_example_decodes_and_round_trips(key: str, direction: str, body: str) -> None:
    decode = decode_message if direction == "in" else decode_outbound_message
    message = decode(key, body.encode())
    assert decode(key, encode_message(message)) == message
    assert set(json.loads(encode_message(message))) >= set(json.loads(body))
