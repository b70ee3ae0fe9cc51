"""Which eligible nodes hold, await or lack each prepull target: the planner's matrix, kept
up to date node by node instead of read whole for every plan.

A pair (node, target digest) is *covered* when the node holds the image or a prepull of it
is pending (requested, failed or parked); the pairs a plan may request are the uncovered
ones. `Coverage` keeps, per target digest, the eligible nodes that lack it (uncovered) in
node order and the eligible nodes that do not hold it, so that the first pairs of the
request window (`worker.domain.prepull.request_window`) are found by walking a few nodes,
whatever the size of the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from attrs import frozen
from sortedcontainers import SortedSet

__all__ = ["PENDING_STATES", "Coverage", "PairCoverage", "request_candidates"]

PENDING_STATES = frozenset({"requested", "failed", "parked"})
"""Prepull states that cover a pair: the planner does not request it anew."""


@frozen
class PairCoverage:
    """What the ledger says of one (node, target digest) pair."""

    present: bool
    state: str | None = None

    @property
    def covered(self) -> bool:
        """Held, or a prepull of it pending."""
        return self.present or self.state in PENDING_STATES


class Coverage:
    """The eligible nodes and, per target digest, who lacks it (see the module docstring)."""

    def __init__(self, digests: Iterable[str]) -> None:
        self.digests = tuple(dict.fromkeys(digests))
        self._eligible: SortedSet[str] = SortedSet()
        self._uncovered: dict[str, SortedSet[str]] = {d: SortedSet() for d in self.digests}
        self._absent: dict[str, set[str]] = {d: set() for d in self.digests}

    def put(self, node: str, eligible: bool, pairs: Mapping[str, PairCoverage]) -> None:
        """Record ``node`` as it is now: whether it is eligible (and not gone), and its rows
        for the target digests (a digest without a row: never seen there)."""
        if eligible:
            self._eligible.add(node)
        else:
            self._eligible.discard(node)
        for digest in self.digests:
            self._place(node, digest, pairs.get(digest), eligible=eligible)

    def put_pair(self, node: str, digest: str, pair: PairCoverage | None) -> None:
        """Record one pair of ``node`` as it is now (None: no row), if ``digest`` is a
        target (a prepull event touches only its pair)."""
        if digest in self._uncovered:
            self._place(node, digest, pair, eligible=node in self._eligible)

    def _place(self, node: str, digest: str, pair: PairCoverage | None, *, eligible: bool) -> None:
        absent, uncovered = self._absent[digest], self._uncovered[digest]
        absent.discard(node)
        uncovered.discard(node)
        if not eligible:
            return
        if pair is None or not pair.present:
            absent.add(node)
        if pair is None or not pair.covered:
            uncovered.add(node)

    @property
    def eligible_nodes(self) -> tuple[str, ...]:
        """Eligible nodes in name order."""
        return tuple(self._eligible)

    def held_everywhere(self) -> frozenset[str]:
        """Target digests every eligible node holds (none while no node is eligible)."""
        if not self._eligible:
            return frozenset()
        return frozenset(d for d in self.digests if not self._absent[d])

    def uncovered(self, digest: str) -> Iterable[str]:
        """Eligible nodes without the digest and without a pending prepull of it, in order."""
        return self._uncovered[digest]


def request_candidates(
    coverage: Coverage,
    wanted: Sequence[str],
    busy: Mapping[str, int],
    per_node: int,
    total: int,
) -> list[tuple[str, str]]:
    """The uncovered pairs a plan may request, as ``(node, digest)`` in (target, node) order:
    per node its first ``per_node - busy`` uncovered targets (in ``wanted`` order), then the
    first ``total`` of those.

    Walks the targets in order and each target's uncovered nodes in name order, skipping the
    nodes whose window is used up, and stops at ``total``: a node counts an uncovered target
    against its window whether or not the pair is among the first ``total``, so once a
    target is walked whole the count of every node still open is exact.
    """
    used = {node: count for node, count in busy.items() if count > 0}
    full = {node for node, count in used.items() if count >= per_node}
    out: list[tuple[str, str]] = []
    for digest in wanted:
        if len(out) >= total:
            break
        walked: list[str] = []
        for node in coverage.uncovered(digest):
            if node in full:
                continue
            out.append((node, digest))
            walked.append(node)
            if len(out) >= total:
                break
        for node in walked:
            used[node] = used.get(node, 0) + 1
            if used[node] >= per_node:
                full.add(node)
    return out
