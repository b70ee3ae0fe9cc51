"""Pure rules of the Kubernetes bridge: pod outcomes, pod names, label values, node.gone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.converter import decode_message, encode_message
from worker.domain.cluster import PrepullPod, label_value, pod_outcome, prepull_pod_name
from worker.domain.errors import MessageRejected
from worker.domain.messages import NodeGoneMessage

NOW = datetime(2077, 1, 1, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def pod(**changes: Any) -> PrepullPod:
    base = PrepullPod(name="p", uid="u", node="node-1", image=f"r.example/lab:t@{DIGEST}")
    return attrs.evolve(base, **changes)


def test_a_pending_or_running_pod_has_no_outcome() -> None:
    assert pod_outcome(pod(), NOW) is None
    assert pod_outcome(pod(phase="Running"), NOW) is None
    assert pod_outcome(pod(waiting_reason="ContainerCreating"), NOW) is None


def test_succeeded_uses_the_container_finish_time() -> None:
    finished = NOW - timedelta(seconds=3)
    outcome = pod_outcome(pod(phase="Succeeded", finished_at=finished, exit_code=0), NOW)
    assert outcome is not None
    assert (outcome.succeeded, outcome.finished_at, outcome.reason) == (True, finished, None)


@pytest.mark.parametrize(
    "reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError"]
)
def test_a_pull_failure_fails_at_once_with_its_reason(reason: str) -> None:
    outcome = pod_outcome(
        pod(waiting_reason=reason, waiting_message="rpc error:\n  not found"), NOW
    )
    assert outcome is not None
    assert not outcome.succeeded
    assert outcome.reason == f"{reason}: rpc error: not found"


def test_a_failed_pod_gives_the_pod_reason_or_the_exit_code() -> None:
    deadline = pod(phase="Failed", reason="DeadlineExceeded", message="too long")
    crashed = pod(phase="Failed", exit_code=127)
    assert pod_outcome(deadline, NOW).reason == "DeadlineExceeded: too long"  # type: ignore[union-attr]
    assert pod_outcome(crashed, NOW).reason == "Failed: exit code 127"  # type: ignore[union-attr]


def test_a_passed_deadline_fails_a_pod_that_never_ran() -> None:
    waiting = pod(deadline=NOW)
    assert pod_outcome(waiting, NOW - timedelta(seconds=1)) is None
    outcome = pod_outcome(waiting, NOW)
    assert outcome is not None
    assert outcome.reason is not None
    assert outcome.reason.startswith("DeadlineExceeded: ")


def test_a_very_long_message_is_cut() -> None:
    outcome = pod_outcome(pod(waiting_reason="ErrImagePull", waiting_message="x" * 5000), NOW)
    assert outcome is not None
    assert outcome.reason is not None
    assert len(outcome.reason) == 300


def test_pod_name_sanitizes_tag_and_node_as_the_reference_does() -> None:
    name = prepull_pod_name("w_2077_01", "node-1.example.org", DIGEST, 2)
    assert name == "prepull-w-2077-01-node-1.example.org-abababababab-2"


@given(
    tag=st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True),
    node=st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,250}[a-z0-9])?", fullmatch=True),
    attempt=st.integers(min_value=1, max_value=10_000),
)
def test_pod_names_are_valid_and_keep_digest_and_attempt(tag: str, node: str, attempt: int) -> None:
    name = prepull_pod_name(tag, node, DIGEST, attempt)
    assert len(name) <= 253
    assert SUBDOMAIN.fullmatch(name), name
    assert name.endswith(f"-abababababab-{attempt}")
    assert name == prepull_pod_name(tag, node, DIGEST, attempt)
    assert name != prepull_pod_name(tag, node, "sha256:" + "cd" * 32, attempt)
    assert name != prepull_pod_name(tag, node + "x", DIGEST, attempt)


@given(st.text(max_size=300))
def test_label_values_are_valid(text: str) -> None:
    value = label_value(text)
    assert len(value) <= 63
    assert LABEL_VALUE.fullmatch(value), value


def test_a_valid_label_value_stays_and_a_digest_keeps_its_prefix() -> None:
    assert label_value("node-1") == "node-1"
    value = label_value(DIGEST)
    assert value.startswith("sha256-abab")
    assert value != label_value("sha256:" + "ab" * 31 + "cd")


def test_node_gone_round_trips_and_needs_a_node() -> None:
    message = NodeGoneMessage(node="node-1", observed_at=NOW)
    assert decode_message("node.gone", encode_message(message)) == message
    with pytest.raises(MessageRejected, match="node"):
        decode_message("node.gone", b'{"node": "", "observed_at": "2077-01-01T00:00:00Z"}')
