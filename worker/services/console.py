"""The status page's answers: the prepull matrix with the menu, refreshes, tag moves, parked
pairs and dead letters (``overview``), and what ``explain`` and ``history`` say of one image
(``image_page``) or one node (``node_page``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from attrs import frozen

from worker.domain.errors import UnknownImageError
from worker.domain.explain import Explanation, ImageQuery
from worker.domain.prepull import PrepullSettings
from worker.services.explain import ExplainLedger, explain_image
from worker.services.history import (
    HistoryLedger,
    NodeHistory,
    TagHistory,
    node_history,
    tag_history,
)

__all__ = [
    "CELL_STATES",
    "EXPLAINED_NODES",
    "MOVES_SINCE",
    "Cell",
    "ConsoleLedger",
    "DeadLetters",
    "ImagePage",
    "MatrixRow",
    "NodePage",
    "Overview",
    "ParkedPair",
    "image_page",
    "node_page",
    "overview",
]

Row = dict[str, Any]
MOVES_SINCE = timedelta(days=7)
"""How far back the tag moves shown go."""
REFRESHES_SHOWN = 8
EXPLAINED_NODES = 50
"""An image page explains the image on this many nodes at most (each is a few queries)."""
CELL_STATES = ("present", "pulling", "waiting", "failed", "parked")
_STATES = {"pending": "waiting", "in_flight": "pulling", "failed": "failed", "parked": "parked"}


class ConsoleLedger(Protocol):
    """What the status page reads of the ledger (the ``dashboard`` views)."""

    async def targets(self) -> list[Row]:
        """Per target image in display order: counts and ``recommended``."""

    async def nodes(self) -> list[Row]:
        """The current nodes: ``node``, ``eligible``, ``reason``."""

    async def pairs(self) -> list[Row]:
        """The (image, eligible node) pairs still without the image, with their state."""

    async def presence(self) -> list[Row]:
        """Where each target digest is present, since when and how it is known."""

    async def menu(self) -> list[Row]:
        """The menu: radio entries, then dropdown entries."""

    async def refreshes(self, limit: int) -> list[Row]:
        """The newest refreshes, newest first."""

    async def tag_moves(self, since: datetime) -> list[Row]:
        """The tag moves after ``since``, newest first, with the tags of both digests."""


@frozen
class Cell:
    """One (image, node) of the matrix: ``present``, ``pulling``, ``waiting``, ``failed``
    or ``parked``, and the tooltip saying why and when the last attempt was."""

    node: str
    state: str
    tooltip: str


@frozen
class MatrixRow:
    """A target image across the eligible nodes."""

    tag: str
    display_name: str
    digest: str | None
    recommended: bool
    prepulled: bool
    cells: tuple[Cell, ...]


@frozen
class ParkedPair:
    """A pair that gave up, and the command that lets it try again."""

    node: str
    tag: str
    failures: int
    reason: str | None
    last_attempt: datetime | None
    command: str


@frozen
class DeadLetters:
    """The workers' dead-letter queue: its name and the messages waiting (None: unknown,
    the broker did not answer)."""

    queue: str
    waiting: int | None


@frozen
class Overview:
    """Everything the status page shows, read at ``at``."""

    at: datetime
    nodes: tuple[str, ...]
    """The eligible nodes: the matrix's columns."""
    rows: tuple[MatrixRow, ...]
    ineligible: tuple[tuple[str, str], ...]
    """The current nodes that get no prepulls, with the reason."""
    radio: tuple[Row, ...]
    dropdown: tuple[Row, ...]
    refreshes: tuple[Row, ...]
    moves: tuple[Row, ...]
    parked: tuple[ParkedPair, ...]
    dead_letters: DeadLetters

    @property
    def counts(self) -> dict[str, int]:
        """The matrix's cells per state, every state named."""
        found = dict.fromkeys(CELL_STATES, 0)
        for row in self.rows:
            for cell in row.cells:
                found[cell.state] += 1
        return found


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "none yet"


def _pair_tooltip(state: str, pair: Row) -> str:
    last = pair["finished_at"] or pair["requested_at"]
    attempts = f"{pair['attempts']} attempt(s), last attempt: {_when(last)}"
    reason = f"reason: {pair['reason']}" if pair["reason"] else ""
    if state == "pulling":
        overdue = " (overdue)" if pair["overdue"] else ""
        head = f"pulling since {_when(pair['requested_at'])}{overdue}"
    elif state == "failed":
        head = f"failed {pair['consecutive_failures']} time(s) in a row; retried after back-off"
    elif state == "parked":
        head = f"parked after {pair['consecutive_failures']} consecutive failure(s)"
    else:
        head = "waiting for a prepull request"
    return "\n".join(part for part in (head, reason, attempts) if part)


def _cell(node: str, digest: str | None, pairs: dict[Any, Row], present: dict[Any, Row]) -> Cell:
    if digest is None:
        return Cell(node, "waiting", "the digest is not resolved yet")
    seen = present.get((node, digest))
    if seen is not None:
        since = seen["present_since"] or seen["observed_at"]
        return Cell(node, "present", f"present since {_when(since)} ({seen['source']})")
    pair = pairs.get((node, digest))
    if pair is None:
        return Cell(node, "waiting", "not planned yet: nothing known of this node and image")
    state = _STATES.get(pair["status"], "waiting")
    return Cell(node, state, _pair_tooltip(state, pair))


def _parked(pairs: list[Row]) -> tuple[ParkedPair, ...]:
    return tuple(
        ParkedPair(p["node"], p["tag"], p["consecutive_failures"], p["reason"],
                   p["finished_at"], f"imageledger unpark {p['tag']} {p['node']}")
        for p in pairs if p["status"] == "parked"
    )  # fmt: skip


async def overview(store: ConsoleLedger, now: datetime, dead_letters: DeadLetters) -> Overview:
    """The status page at ``now``: the prepull matrix (target images × eligible nodes), the
    nodes apart, the menu, the last refreshes, the week's tag moves and the parked pairs."""
    nodes, pairs, targets = await store.nodes(), await store.pairs(), await store.targets()
    by_pair = {(p["node"], p["digest"]): p for p in pairs}
    present = {(p["node"], p["digest"]): p for p in await store.presence()}
    columns = tuple(n["node"] for n in nodes if n["eligible"])
    rows = tuple(
        MatrixRow(t["tag"], t["display_name"], t["digest"], t["recommended"], t["prepulled"],
                  tuple(_cell(node, t["digest"], by_pair, present) for node in columns))
        for t in targets
    )  # fmt: skip
    menu = await store.menu()
    return Overview(
        at=now,
        nodes=columns,
        rows=rows,
        ineligible=tuple((n["node"], n["reason"] or "") for n in nodes if not n["eligible"]),
        radio=tuple(m for m in menu if m["section"] == "radio"),
        dropdown=tuple(m for m in menu if m["section"] == "dropdown"),
        refreshes=tuple(await store.refreshes(REFRESHES_SHOWN)),
        moves=tuple(await store.tag_moves(now - MOVES_SINCE)),
        parked=_parked(pairs),
        dead_letters=dead_letters,
    )


@frozen
class ImagePage:
    """What ``imageledger history`` (for a tag) and ``imageledger explain`` on the current
    nodes say of one image."""

    name: str
    history: TagHistory | None
    """None when the image was named by its digest."""
    explanations: tuple[Explanation, ...]
    """On the first ``EXPLAINED_NODES`` current nodes, by name."""
    nodes_total: int
    unexplained: str | None = None
    """Why there are no explanations: the image is not in the registry now (a removed tag
    keeps its history)."""


@frozen
class NodePage:
    """What ``imageledger history --node`` and ``explain`` of each target image say of one
    node."""

    history: NodeHistory
    explanations: tuple[tuple[str, Explanation], ...]
    """Per target image, its tag and the explanation."""


async def image_page(
    console: ConsoleLedger,
    history: HistoryLedger,
    explain: ExplainLedger,
    query: ImageQuery,
    now: datetime,
    settings: PrepullSettings,
) -> ImagePage:
    """The image's tag history and its explanation on the current nodes (the first
    ``EXPLAINED_NODES`` by name).

    Raises UnknownImageError for an image the ledger never knew; a tag that is gone keeps
    its history (``unexplained`` says why nothing is explained).
    """
    changes = await tag_history(history, query) if query.tag is not None else None
    nodes = [n["node"] for n in await console.nodes()]
    try:
        answers = [await explain_image(explain, query, node, now, settings)
                   for node in nodes[:EXPLAINED_NODES]]  # fmt: skip
    except UnknownImageError as exc:
        if changes is None:
            raise
        return ImagePage(str(query), changes, (), len(nodes), str(exc))
    return ImagePage(str(query), changes, tuple(answers), len(nodes))


async def node_page(
    console: ConsoleLedger,
    history: HistoryLedger,
    explain: ExplainLedger,
    node: str,
    now: datetime,
    settings: PrepullSettings,
) -> NodePage:
    """The node's images and history, and the explanation of each target image on it.

    Raises UnknownNodeError for a node never seen.
    """
    held = await node_history(history, node, now, limit=50)
    targets = await console.targets()
    answers = []
    for target in targets:
        query = ImageQuery(target["tag"], None, target["registry"], target["repository"])
        answers.append((target["tag"], await explain_image(explain, query, node, now, settings)))
    return NodePage(held, tuple(answers))
