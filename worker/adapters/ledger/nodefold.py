"""The node-scoped projections (nodes, node_images, image_presence) folded set-based in SQL.

Node inventories and prepulls are most of the log, so their fold runs inside PostgreSQL: one
statement folds every node and prepull event of a batch into the current rows, in position
order; an append's batch is the events the same statement inserts (``append_statement``), a
rebuild's a position range of the log (``replay_statement``). It implements the rules of
``worker.domain.ledger`` (the specification): the rebuild-parity property test checks that
both give the same rows.

The statements are composed from the files of ``sql/nodefold/`` (see
``worker.adapters.ledger.statements``): ``nodes.sql`` and ``node_images.sql`` hold the fold
rules, one expression per column of the new rows; the column lists that read the old rows
and write the new ones come from the table objects (``worker.adapters.ledger.layout``), so
a column without a rule makes the statement fail when it is prepared. Both statements take
the fold's own parameters (``FOLD_PARAMETERS``) besides their events'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table

from worker.adapters.ledger import schema
from worker.adapters.ledger.layout import assignments, column_list, key_match, qualified
from worker.adapters.ledger.statements import (
    Sql,
    Statement,
    compose,
    identifier,
    literals,
    load,
    statement,
)
from worker.domain.field_rules import FOLD_SKEW
from worker.domain.ledger import NODE_EVENTS

__all__ = [
    "FOLD_PARAMETERS",
    "NODE_EVENT_TYPES",
    "append_statement",
    "count_presence",
    "fold_parts",
    "replay_statement",
]

NODE_EVENT_TYPES = tuple(cls.TYPE for cls in NODE_EVENTS)
"""The stored types of the events this fold folds (the others are folded in Python)."""

FOLD_PARAMETERS: Mapping[str, Any] = {"fold_skew": FOLD_SKEW}
"""The values of the fold's own parameters: ``fold_skew``, how far past its recording an
event may count as observed (``worker.domain.ledger.as_folded``)."""

_RETURNING = Sql("\n    RETURNING 1")


def _old_rows(table: Table, keys: str, *, probe: bool) -> Sql:
    """The stored rows of ``table`` for the keys in the CTE ``keys``, with their row ids:
    probed one by one for an append, joined for a replay."""
    return compose(
        load("nodefold/old_rows_probe" if probe else "nodefold/old_rows_join"),
        keys=identifier(keys),
        table=qualified(table),
        match=key_match(table, "t", "k"),
    )


def _writes(name: str, table: Table, rows: str, returning: Sql) -> Sql:
    """Write the CTE ``rows`` into ``table`` (CTEs ``inserted_<name>``, ``updated_<name>``)."""
    return compose(
        load("nodefold/write_rows"),
        inserted=identifier(f"inserted_{name}"),
        updated=identifier(f"updated_{name}"),
        table=qualified(table),
        columns=column_list(table.columns),
        rows=identifier(rows),
        assignments=assignments(table, "n"),
        returning=returning,
    )


def fold_parts(nodes: Table, images: Table, *, append: bool) -> dict[str, Sql]:
    """The fold's CTEs reading and writing ``nodes`` and ``images``, by slot name."""
    returning = Sql("") if append else _RETURNING
    return {
        "nodes": compose(
            load("nodefold/nodes"), old_nodes=_old_rows(nodes, "node_keys", probe=append)
        ),
        "node_images": compose(
            load("nodefold/node_images"),
            old_images=_old_rows(images, "image_keys", probe=append),
        ),
        "write_nodes": _writes("nodes", nodes, "new_nodes", returning),
        "write_node_images": _writes("images", images, "new_images", returning),
    }


def append_statement(append: Sql, result: Sql) -> Sql:
    """One statement that appends events and folds the node and prepull events among them.

    ``append`` is a WITH list ending in ``appended``, an ``INSERT INTO ledger.events``
    returning at least ``position, type, data, occurred_at, recorded_at``; ``result`` is the
    statement's SELECT list over ``appended``. The fold reads the new events from
    ``appended`` and moves ``image_presence`` by what they change.
    """
    return compose(
        load("nodefold/append"),
        append=append,
        events=compose(
            load("nodefold/events_appended"), node_event_types=literals(NODE_EVENT_TYPES)
        ),
        presence=load("nodefold/presence"),
        presence_columns=column_list(schema.image_presence.columns),
        result=result,
        **fold_parts(schema.nodes, schema.node_images, append=True),
    )


def replay_statement(nodes: Table, images: Table) -> Statement:
    """Fold the node events of positions (``after``, ``upto``] of types ``types`` whose node
    falls in partition ``partition`` of ``partitions`` (by a hash of the node name) into
    the tables ``nodes`` and ``images``, leaving ``image_presence`` to ``count_presence``."""
    return statement(
        "nodefold/replay",
        events=load("nodefold/events_range"),
        **fold_parts(nodes, images, append=False),
    )


_COUNT_PRESENCE = statement(
    "nodefold/count_presence", columns=column_list(schema.image_presence.columns)
)


async def count_presence(db: Any) -> None:
    """Fill the (empty) ``image_presence`` table from the node and node-image rows."""
    await _COUNT_PRESENCE.execute(db)
