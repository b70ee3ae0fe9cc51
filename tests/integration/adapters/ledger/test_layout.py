"""Adding a column: the table object is the one list of columns, and nothing can forget it.

A copy of the ledger's table objects gets one more column, ``nodes.note``. Everything that
lists a table's columns takes the list from the table object, so the codec, the fold's
writes and the rebuild's staging tables all carry the new column; a row class without a
field for it stops the codec, and the fold, whose rules do not fill it yet, fails when
PostgreSQL prepares it instead of leaving it empty.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from attrs import frozen
from sqlalchemy import Column, MetaData, Table, Text

from tests.support.database import raw_url
from worker.adapters.ledger import schema
from worker.adapters.ledger.layout import (
    LayoutError,
    check_fields,
    create_staging,
    staging_table,
)
from worker.adapters.ledger.nodefold import fold_parts, replay_statement
from worker.adapters.ledger.rows import CODECS, TableCodec
from worker.domain.projection import NodeRow

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


@frozen
class NotedNode(NodeRow):
    """A node row with the new field."""

    note: str | None = None


def with_note() -> tuple[Table, Table]:
    """Copies of ``ledger.nodes`` (with a ``note`` column more) and ``ledger.node_images``."""
    copy = MetaData(schema=schema.SCHEMA)
    nodes = schema.nodes.to_metadata(copy)
    nodes.append_column(Column("note", Text))
    return nodes, schema.node_images.to_metadata(copy)


def test_every_projection_codec_lists_exactly_its_table_columns() -> None:
    for codec in CODECS.values():
        assert codec.columns == tuple(c.name for c in codec.table.columns)
        assert codec.select.text == ", ".join(f"x.{c.name}" for c in codec.table.columns)


def test_a_row_class_and_a_table_that_disagree_stop_the_codec() -> None:
    nodes, _ = with_note()
    with pytest.raises(LayoutError, match="note"):
        TableCodec(nodes, NodeRow)
    with pytest.raises(LayoutError, match="note"):
        TableCodec(schema.nodes, NotedNode)
    with pytest.raises(LayoutError, match="note"):
        check_fields(("node", "note"), ("node",), "NodeRow")


def test_the_codec_derives_the_new_column_from_the_table() -> None:
    nodes, _ = with_note()
    codec = TableCodec(nodes, NotedNode)
    row = NotedNode("n1", T0, {"zone": "a"}, eligible=True, note="cordoned for tests")
    record = codec.encode(row)
    assert record[-1] == "cordoned for tests"
    assert codec.decode(record) == row
    assert codec.select.text.endswith("x.image_count, x.note")
    assert "note = excluded.note" in codec._upsert.source
    assert "CAST(:note AS TEXT[])" in codec._upsert.source


def test_the_fold_writes_and_the_staging_tables_take_the_new_column() -> None:
    nodes, images = with_note()
    writes = fold_parts(nodes, images, append=True)["write_nodes"].text
    assert "image_count, note)" in writes
    assert "note = n.note" in writes
    staging = staging_table(nodes, "rebuild_test_nodes_0")
    assert [c.name for c in staging.columns][-1] == "note"
    ddl = create_staging(staging).text
    assert ddl.startswith("CREATE UNLOGGED TABLE ledger.rebuild_test_nodes_0")
    assert "note TEXT" in ddl
    assert "PRIMARY KEY" not in ddl


async def test_a_fold_without_a_rule_for_the_column_fails_when_prepared(
    database_url: str,
) -> None:
    nodes, images = with_note()
    db = await asyncpg.connect(raw_url(database_url))
    try:
        await db.prepare(replay_statement(schema.nodes, schema.node_images).sql)
        await db.execute("ALTER TABLE ledger.nodes ADD COLUMN note text")
        with pytest.raises(asyncpg.UndefinedColumnError, match='"note"'):
            await db.prepare(replay_statement(nodes, images).sql)
    finally:
        await db.close()
