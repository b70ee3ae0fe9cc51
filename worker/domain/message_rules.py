"""What an inbound message must meet beyond its shape, checked where it arrives: names and
labels as Kubernetes allows them, OCI digests, sizes within bigint, bounded text, plausible
times. Producers are not held to these rules; the worker refuses what breaks them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from worker.domain.field_rules import (
    MAX_IMAGE_NAME,
    MAX_REASON,
    digest_problem,
    dns_subdomain_problem,
    label_key_problem,
    label_value_problem,
    shown,
    size_problem,
    taint_effect_problem,
    text_problem,
    time_problem,
)
from worker.domain.messages import (
    InboundMessage,
    InvalidFieldError,
    NodeInventory,
    PodCompleted,
    RefreshRequested,
)
from worker.domain.nodes import KubeletImage, Taint
from worker.domain.references import DockerReference

__all__ = ["check_clock", "check_inbound"]


def _fail(path: str, problem: str | None) -> None:
    if problem is not None:
        raise InvalidFieldError(path, problem)


def _optional(path: str, value: str | None, limit: int) -> None:
    if value is not None:
        _fail(path, text_problem(value, limit))


def _pulled_image(image: DockerReference) -> None:
    """Pinned by an OCI digest of sha256 or sha512, its name within 255 characters."""
    if image.digest is not None:
        _fail("image", digest_problem(image.digest))
    name = f"{image.registry}/{image.repository}"
    if len(name) > 255:
        _fail("image", f"name must be at most 255 characters, got {len(name)}")


def _labels(labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        path = f"labels[{shown(key)}]"
        _fail(path, label_key_problem(key))
        _fail(path, label_value_problem(value))


def _taints(taints: tuple[Taint, ...]) -> None:
    for i, taint in enumerate(taints):
        _fail(f"taints[{i}].key", label_key_problem(taint.key))
        _fail(f"taints[{i}].value", label_value_problem(taint.value or ""))
        _fail(f"taints[{i}].effect", taint_effect_problem(taint.effect))


def _kubelet_images(images: tuple[KubeletImage, ...]) -> None:
    """Names within bounds, a digest in a name an OCI digest, sizes within bigint."""
    for i, image in enumerate(images):
        for j, name in enumerate(image.names):
            if len(name) > MAX_IMAGE_NAME:
                _fail(f"images[{i}].names[{j}]", f"must be at most {MAX_IMAGE_NAME} characters")
            if "@" in name:
                _fail(f"images[{i}].names[{j}]", digest_problem(name.rpartition("@")[2]))
        if image.size_bytes is not None:
            _fail(f"images[{i}].sizeBytes", size_problem(image.size_bytes))


def check_inbound(message: InboundMessage) -> None:
    """Raise InvalidFieldError naming the first field of ``message`` that breaks a rule:
    node and pod names (DNS-1123 subdomains of at most 253 characters), label and taint
    keys and values (Kubernetes' label syntax), taint effects, digests (OCI), sizes
    (0 <= n < 2^63), reasons (at most 2,048 characters), times (not before 2000)."""
    if isinstance(message, RefreshRequested):
        _optional("reason", message.reason, MAX_REASON)
    elif isinstance(message, PodCompleted):
        _fail("node", dns_subdomain_problem(message.node))
        _pulled_image(message.image)
        _fail("pod", dns_subdomain_problem(message.pod))
        _optional("reason", message.reason, MAX_REASON)
    else:  # node.inventory, node.gone
        _fail("node", dns_subdomain_problem(message.node))
        if isinstance(message, NodeInventory):
            _labels(message.labels)
            _taints(message.taints)
            _kubelet_images(message.images)
    name, at = _message_time(message)
    if at is not None:
        _fail(name, time_problem(at))


def _message_time(message: InboundMessage) -> tuple[str, datetime | None]:
    """The field of a message that says when it happened, and its value."""
    if isinstance(message, RefreshRequested):
        return "requested_at", message.requested_at
    if isinstance(message, PodCompleted):
        return "finished_at", message.finished_at
    return "observed_at", message.observed_at


def check_clock(message: InboundMessage, now: datetime, max_skew: timedelta) -> None:
    """Refuse a message dated more than ``max_skew`` ahead of ``now`` (the worker's clock):
    the newest observation wins, so a far-future time would pin a node's state for good.
    Raises InvalidFieldError naming the field."""
    name, at = _message_time(message)
    if at is not None:
        _fail(name, time_problem(at, now, max_skew))
