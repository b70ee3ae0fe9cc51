"""What the Kubernetes bridge sees of a cluster (nodes, prepull pods) and its pure rules."""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime

from attrs import field, frozen

from worker.domain.nodes import KubeletImage, Taint

__all__ = [
    "MANAGED_BY",
    "PULL_FAILURES",
    "ClusterNode",
    "NodeEvent",
    "NodeListing",
    "PodEvent",
    "PodListing",
    "PodOutcome",
    "PrepullPod",
    "WatchEventKind",
    "label_value",
    "pod_outcome",
    "prepull_pod_name",
]

MANAGED_BY = "imageledger"
"""The ``app.kubernetes.io/managed-by`` label value of every pod the bridge creates."""

PULL_FAILURES = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError"}
)
"""Container waiting reasons that fail a prepull at once (no waiting through back-off)."""

_MAX_NAME = 253
_MAX_LABEL = 63
_MAX_REASON = 300


class WatchEventKind(enum.Enum):
    """The ``type`` of a Kubernetes watch event (``ERROR`` becomes an exception)."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"


@frozen
class ClusterNode:
    """A node as the API server reports it: what ``node.inventory`` carries, plus identity."""

    name: str
    uid: str
    resource_version: str
    labels: Mapping[str, str] = field(factory=dict)
    taints: tuple[Taint, ...] = ()
    images: tuple[KubeletImage, ...] = ()
    unschedulable: bool = False

    def inventory(self) -> tuple[object, ...]:
        """What a ``node.inventory`` reports; a change of it is worth a message."""
        return (sorted(self.labels.items()), self.taints, self.images, self.unschedulable)


@frozen
class NodeListing:
    """Every node, and the resource version to watch from."""

    nodes: tuple[ClusterNode, ...]
    resource_version: str


@frozen
class NodeEvent:
    """One watch event of a node; a bookmark carries only the resource version."""

    kind: WatchEventKind
    resource_version: str
    node: ClusterNode | None = None


@frozen
class PrepullPod:
    """A prepull pod as last seen: identity, what it pulls, and the state that matters.

    ``waiting_reason`` is the first container's waiting reason (``ErrImagePull`` ...),
    ``reason`` the pod's own (``DeadlineExceeded``); ``image`` is the reference the request
    named (tag and digest), ``deadline`` the request's, when the pod carries them.
    """

    name: str
    uid: str
    node: str
    image: str
    phase: str = "Pending"
    reason: str | None = None
    message: str | None = None
    waiting_reason: str | None = None
    waiting_message: str | None = None
    exit_code: int | None = None
    finished_at: datetime | None = None
    deadline: datetime | None = None
    deleting: bool = False


@frozen
class PodListing:
    """Every prepull pod of the bridge, and the resource version to watch from."""

    pods: tuple[PrepullPod, ...]
    resource_version: str


@frozen
class PodEvent:
    """One watch event of a prepull pod; a bookmark carries only the resource version."""

    kind: WatchEventKind
    resource_version: str
    pod: PrepullPod | None = None


@frozen
class PodOutcome:
    """How a prepull pod ended: succeeded, or failed with a one-line reason."""

    succeeded: bool
    finished_at: datetime
    reason: str | None = None


def _reason(reason: str, message: str | None) -> str:
    text = f"{reason}: {message}" if message else reason
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def pod_outcome(pod: PrepullPod, now: datetime) -> PodOutcome | None:
    """Whether ``pod`` has finished at ``now``, and how; None while it is still going.

    ``Succeeded`` succeeds; ``Failed``, a container waiting for one of ``PULL_FAILURES``
    (the first pull failure, not the back-off after it) or a passed deadline fail, with
    the reason and message Kubernetes gave.
    """
    finished = pod.finished_at or now
    if pod.phase == "Succeeded":
        return PodOutcome(True, finished)
    if pod.phase == "Failed":
        if pod.reason:
            return PodOutcome(False, finished, _reason(pod.reason, pod.message))
        exit_code = f"exit code {pod.exit_code}" if pod.exit_code is not None else None
        return PodOutcome(False, finished, _reason("Failed", pod.message or exit_code))
    if pod.waiting_reason in PULL_FAILURES:
        return PodOutcome(False, now, _reason(pod.waiting_reason, pod.waiting_message))
    if pod.deadline is not None and now >= pod.deadline:
        message = f"not finished by its deadline {pod.deadline.isoformat()}"
        return PodOutcome(False, now, _reason("DeadlineExceeded", message))
    return None


def _dns_part(text: str) -> str:
    """The reference's sanitizing (``_`` to ``-``, other characters dropped), lowercased,
    with dots only where DNS-1123 allows them."""
    text = re.sub(r"[^a-z0-9.-]", "", text.replace("_", "-").lower())
    text = re.sub(r"[.-]*\.[.-]*", lambda m: "." if m.group() == "." else "-", text)
    return text.strip(".-")


def prepull_pod_name(tag: str, node: str, digest: str, attempt: int) -> str:
    """``prepull-<tag>-<node>-<digest prefix>-<attempt>``: deterministic, a DNS-1123
    subdomain of at most 253 characters.

    Tag and node are sanitized as the reference does; the digest prefix and attempt keep
    the name unique when a tag moves or a prepull is retried. A long tag or node is cut,
    never the suffix, and then a hash of both joins the suffix, so that two nodes whose
    names differ only after the cut get pods of their own.
    """
    hex_part = digest.partition(":")[2] or digest
    suffix = f"-{_dns_part(hex_part)[:12]}-{attempt}"
    head = "-".join(p for p in ("prepull", _dns_part(tag), _dns_part(node)) if p)
    if len(head) > _MAX_NAME - len(suffix):
        suffix = f"-{hashlib.sha256(f'{tag}/{node}'.encode()).hexdigest()[:10]}{suffix}"
    return head[: _MAX_NAME - len(suffix)].rstrip(".-") + suffix


def label_value(text: str) -> str:
    """``text`` as a valid label value (at most 63 characters of ``[A-Za-z0-9_.-]``,
    alphanumeric at both ends); a value that had to be cut ends in a hash of the whole."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text).strip("_.-")
    if cleaned == text and len(cleaned) <= _MAX_LABEL:
        return cleaned
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{cleaned[: _MAX_LABEL - 11].rstrip('_.-')}-{digest}".lstrip("-")
