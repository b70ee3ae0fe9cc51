"""Nodes: labels, taints, tolerations, eligibility and the images a kubelet reports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from attrs import field, frozen

from worker.domain.references import DockerReference, InvalidReferenceError

__all__ = [
    "DEFAULT_NODE_STATUS_MAX_IMAGES",
    "Eligibility",
    "KubeletImage",
    "Node",
    "Taint",
    "Toleration",
    "cached_digests",
    "eligibility",
    "matches_selector",
]

DEFAULT_NODE_STATUS_MAX_IMAGES = 50
"""Kubelet's default cap on ``node.status.images`` (``--node-status-max-images``)."""


@frozen
class Taint:
    """A Kubernetes node taint."""

    key: str
    effect: str
    value: str | None = None


@frozen
class Toleration:
    """A Kubernetes toleration as written in a pod spec."""

    key: str | None = None
    operator: str = "Equal"
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None

    def tolerates(self, taint: Taint) -> bool:
        """Whether this toleration permanently tolerates ``taint`` (reference 3.4)."""
        if self.effect and self.effect != taint.effect:
            return False
        if taint.effect == "NoExecute" and self.toleration_seconds is not None:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == taint.key
        return self.key == taint.key and (self.value or "") == (taint.value or "")


@frozen
class Eligibility:
    """Whether lab pods (and so prepulls) may run on a node, and why not."""

    eligible: bool
    comment: str | None = None


def eligibility(taints: Iterable[Taint], tolerations: Sequence[Toleration]) -> Eligibility:
    """Eligible when every taint other than PreferNoSchedule is tolerated.

    The first untolerated taint gives the reason, in the reference's words.
    """
    for taint in taints:
        if taint.effect == "PreferNoSchedule":
            continue
        if any(t.tolerates(taint) for t in tolerations):
            continue
        what = f"{taint.key} = {taint.value}" if taint.value else taint.key
        return Eligibility(False, f"Node is tainted ({taint.effect}, {what})")
    return Eligibility(True, None)


def matches_selector(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    """Equality-only node selector, as the reference's ``lab.nodeSelector``."""
    return all(labels.get(key) == value for key, value in selector.items())


@frozen
class KubeletImage:
    """One entry of ``node.status.images``: its names and size."""

    names: tuple[str, ...] = ()
    size_bytes: int | None = None


def cached_digests(images: Iterable[KubeletImage]) -> dict[str, int | None]:
    """Digest -> size for each reported image whose names include a ``@digest`` reference.

    Entries without names, or whose names carry no digest, contribute nothing (reference 4.2).
    """
    out: dict[str, int | None] = {}
    for image in images:
        for name in image.names:
            try:
                reference = DockerReference.parse(name)
            except InvalidReferenceError:
                continue
            if reference.digest:
                out.setdefault(reference.digest, image.size_bytes)
                break
    return out


@frozen
class Node:
    """A node as last seen: labels, taints and the digests it holds."""

    name: str
    labels: Mapping[str, str] = field(factory=dict)
    taints: tuple[Taint, ...] = ()
    digests: Mapping[str, int | None] = field(factory=dict)
    observed_at: datetime | None = None
    truncated: bool = False

    def has(self, digest: str | None) -> bool:
        """Whether the node holds this digest."""
        return digest is not None and digest in self.digests
