"""What the dashboards see: read the views, print a compact table, judge convergence."""

from __future__ import annotations

import asyncpg
from attrs import frozen

__all__ = ["Board", "read_board"]

_CELLS = {"in_flight": "pull", "failed": "FAIL", "pending": "wait", "parked": "PARK"}


@frozen
class Target:
    """A prepull target (``dashboard.prepull_status``)."""

    tag: str
    digest: str | None
    display_name: str
    eligible: int
    present: int
    prepulled: bool


@frozen
class MenuEntry:
    """A row of ``dashboard.menu``."""

    section: str
    tag: str
    digest: str | None
    display_name: str


@frozen
class Board:
    """One reading of the views."""

    targets: tuple[Target, ...]
    nodes: tuple[tuple[str, bool], ...]
    """``(node, eligible)`` for current nodes."""
    present: frozenset[tuple[str, str]]
    """``(node, digest)`` pairs present now."""
    queue: dict[tuple[str, str], str]
    """``(node, digest)`` → queue status."""
    menu: tuple[MenuEntry, ...]
    refresh: str

    @property
    def radio(self) -> list[MenuEntry]:
        """The radio entries, in order."""
        return [entry for entry in self.menu if entry.section == "radio"]

    def recommended(self) -> MenuEntry | None:
        """The first radio entry."""
        radio = self.radio
        return radio[0] if radio else None

    def converged(self, recommended_digest: str) -> bool:
        """Every target on every eligible node, nothing queued, the menu showing them all
        with ``recommended`` first and naming ``recommended_digest``."""
        eligible = sum(1 for _, ok in self.nodes if ok)
        first = self.recommended()
        return (
            bool(self.targets)
            and eligible > 0
            and all(t.prepulled and t.eligible == eligible for t in self.targets)
            and not self.queue
            and first is not None
            and first.tag == "recommended"
            and first.digest == recommended_digest
            and {e.digest for e in self.radio} == {t.digest for t in self.targets}
        )

    def render(self, elapsed: float) -> list[str]:
        """The status line, the image × node table and the menu line."""
        names = [node for node, _ in self.nodes]
        width = max([len(t.display_name) for t in self.targets] + [30]) + 2
        done = sum(t.present for t in self.targets)
        wanted = sum(t.eligible for t in self.targets)
        failed = sum(1 for status in self.queue.values() if status == "failed")
        lines = [
            f"[{elapsed:5.1f} s] {self.refresh} | prepulled {done}/{wanted} (image, node) pairs"
            + (f", {failed} failed (retrying)" if failed else "")
        ]
        if not self.targets:
            return lines
        lines.append("    " + "image".ljust(width) + " ".join(n.rjust(7) for n in names))
        radio = {entry.digest for entry in self.radio}
        for target in self.targets:
            cells = [self._cell(node, ok, target.digest) for node, ok in self.nodes]
            mark = "R" if target.digest in radio else " "
            lines.append(f"  {mark} " + target.display_name.ljust(width) + " ".join(cells))
        first = self.recommended()
        lines.append(
            f"    menu: first {first.display_name if first else '(none)'!r}, "
            f"{len(self.radio)} radio, {len(self.menu) - len(self.radio)} dropdown entries"
        )
        return lines

    def _cell(self, node: str, eligible: bool, digest: str | None) -> str:
        if not eligible:
            return "-".rjust(7)
        if digest is not None and (node, digest) in self.present:
            return "ok".rjust(7)
        status = self.queue.get((node, digest or ""))
        return _CELLS.get(status or "", ".").rjust(7)


async def read_board(connection: asyncpg.Connection) -> Board:
    """Read the views in one snapshot (a repeatable-read transaction)."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        targets = await connection.fetch(
            "SELECT tag, digest, display_name, eligible_nodes, present_nodes, prepulled"
            " FROM dashboard.prepull_status ORDER BY display_position"
        )
        nodes = await connection.fetch(
            "SELECT node, eligible FROM dashboard.nodes WHERE current ORDER BY node"
        )
        present = await connection.fetch(
            "SELECT node, digest FROM dashboard.node_images WHERE present"
        )
        queue = await connection.fetch("SELECT node, digest, status FROM dashboard.prepull_queue")
        menu = await connection.fetch(
            "SELECT section, tag, digest, display_name FROM dashboard.menu"
        )
        refresh = await connection.fetchrow(
            "SELECT status, tags_total, discovered, moved FROM dashboard.refreshes LIMIT 1"
        )
    return Board(
        targets=tuple(Target(*row) for row in targets),
        nodes=tuple((row["node"], row["eligible"]) for row in nodes),
        present=frozenset((row["node"], row["digest"]) for row in present),
        queue={(row["node"], row["digest"]): row["status"] for row in queue},
        menu=tuple(MenuEntry(*row) for row in menu),
        refresh=_refresh_text(refresh),
    )


def _refresh_text(row: asyncpg.Record | None) -> str:
    if row is None:
        return "no refresh yet"
    if row["status"] != "completed":
        return f"refresh {row['status']}"
    return f"refresh: {row['tags_total']} tags, {row['discovered']} new, {row['moved']} moved"
