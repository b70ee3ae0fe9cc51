"""SQLAlchemy table models of schema ``ledger``, for queries and for ``alembic check``.

The migrations in ``migrations/versions`` create these tables; ``alembic check`` fails when
the two disagree. Views and functions of schema ``dashboard`` are plain SQL files
(``migrations/views``) and are not modelled here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

Key = Text(collation="C")
"""Text compared byte-wise: keys, names and digests sort and join fast and stably."""

__all__ = [
    "PROJECTION_TABLES",
    "SCHEMA",
    "events",
    "image_presence",
    "images",
    "menu_entries",
    "messages",
    "metadata",
    "node_images",
    "nodes",
    "outbox",
    "policies",
    "prepull_targets",
    "refreshes",
    "tag_history",
    "tags",
]

SCHEMA = "ledger"
metadata = MetaData(schema=SCHEMA)


Time = DateTime(timezone=True)
"""Timestamps are always time-zone aware."""


def _key(*names: str) -> list[Column[Any]]:
    """The primary key's columns, byte-wise text."""
    return [Column(name, Key, primary_key=True) for name in names]


def _columns(sql_type: Any, *names: str, nullable: bool = True) -> list[Column[Any]]:
    """Columns of one type, in this order."""
    return [Column(name, sql_type, nullable=nullable) for name in names]


def _stamp(name: str) -> Column[Any]:
    """A timestamp the database sets when the row is inserted."""
    return Column(name, Time, nullable=False, server_default=text("now()"))


events = Table(
    "events",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    *_columns(Key, "stream", "type", nullable=False),
    Column("version", Integer, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("occurred_at", Time, nullable=False),
    _stamp("recorded_at"),
    Column("idempotency_key", Key, nullable=False, unique=True),
    Column("causation", Key),
    Index("ix_events_stream_position", "stream", "position"),
)

tags = Table(
    "tags",
    metadata,
    *_key("registry", "repository", "tag"),
    Column("digest", Key),
    *_columns(Time, "first_seen_at", "changed_at", nullable=False),
    Column("removed_at", Time),
    Column("history_seq", Integer, nullable=False),
    Column("image_type", Text, nullable=False),
    Column("type_rank", SmallInteger, nullable=False),
    Column("sort_text", Key, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("version", Text),
    *_columns(Integer, "cycle", "cycle_build", "build"),
    *_columns(Text, "extra", "architecture"),
    Column("tag_date", Time),
    Index("ix_tags_digest", "digest"),
)

tag_history = Table(
    "tag_history",
    metadata,
    *_key("registry", "repository", "tag"),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("digest", Key),
    Column("valid_from", Time, nullable=False),
    Column("valid_until", Time),
    Index("ix_tag_history_tag_from", "tag", "valid_from"),
    Index("ix_tag_history_digest_from", "digest", "valid_from"),
)

nodes = Table(
    "nodes",
    metadata,
    *_key("node"),
    Column("first_seen_at", Time, nullable=False),
    *_columns(JSONB, "labels", "taints", nullable=False),
    Column("eligible", Boolean, nullable=False),
    Column("comment", Text),
    *_columns(Time, "seen_at", "gone_at", "last_inventory_at", "last_complete_at"),
    Column("truncated", Boolean),
    Column("image_count", Integer),
    postgresql_with={"fillfactor": 70},
)

node_images = Table(
    "node_images",
    metadata,
    *_key("node", "digest"),
    Column("present", Boolean),
    Column("observed_at", Time),
    Column("source", Key),
    Column("size_bytes", BigInteger),
    Column("present_since", Time),
    Column("prepull_state", Key),
    *_columns(
        Integer,
        "prepull_requests",
        "prepull_failures",
        "prepull_failures_total",
        nullable=False,
    ),
    *_columns(Time, "prepull_requested_at", "prepull_deadline", "prepull_finished_at"),
    Column("prepull_reason", Text),
    *_columns(Key, "registry", "repository", "tag"),
    Index("ix_node_images_digest_node", "digest", "node"),
    Index(
        "ix_node_images_pending",
        "node",
        "digest",
        postgresql_where=text("prepull_state IN ('requested', 'failed')"),
    ),
    postgresql_with={"fillfactor": 70},
)

image_presence = Table(
    "image_presence",
    metadata,
    *_key("digest"),
    Column("eligible_nodes", Integer, nullable=False),
    postgresql_with={"fillfactor": 50},
)

refreshes = Table(
    "refreshes",
    metadata,
    *_key("refresh_id"),
    *_columns(Key, "registry", "repository", "status", nullable=False),
    Column("started_at", Time, nullable=False),
    Column("finished_at", Time),
    Column("tags_total", Integer),
    *_columns(Integer, "discovered", "resolved", "moved", "removed", nullable=False),
    Column("requests", JSONB, nullable=False),
    Column("retries", Integer, nullable=False),
    Column("bytes_received", BigInteger, nullable=False),
    Column("duration_seconds", Float),
    Column("flagged_tags", ARRAY(Text), nullable=False),
    Column("rate_limits", JSONB, nullable=False),
    Column("reason", Text),
    Index("ix_refreshes_repository_started", "registry", "repository", "started_at"),
)

policies = Table(
    "policies",
    metadata,
    *_key("registry", "repository"),
    Column("configured_at", Time, nullable=False),
    Column("recommended_tag", Text, nullable=False),
    *_columns(Integer, "num_releases", "num_weeklies", "num_dailies", nullable=False),
    Column("cycle", Integer),
    *_columns(ARRAY(Text), "pin", "alias_tags", nullable=False),
    *_columns(JSONB, "dropdown", "node_selector", "tolerations", nullable=False),
)

images = Table(
    "images",
    metadata,
    *_key("registry", "repository", "tag"),
    Column("digest", Key),
    Column("image_type", Text, nullable=False),
    Column("type_rank", SmallInteger, nullable=False),
    Column("position", Integer, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("alias_target", Text),
    Column("aliases", ARRAY(Text), nullable=False),
    Column("is_primary", Boolean, nullable=False),
    Column("architecture", Text),
    Column("size_bytes", BigInteger),
    Index("ix_images_digest", "digest"),
)

prepull_targets = Table(
    "prepull_targets",
    metadata,
    *_key("registry", "repository", "tag"),
    Column("digest", Key),
    Column("position", Integer, nullable=False),
    *_columns(Text, "reference", "display_name", "image_type", nullable=False),
    Column("size_bytes", BigInteger),
    Column("pull", Boolean, nullable=False),
)

menu_entries = Table(
    "menu_entries",
    metadata,
    *_key("registry", "repository", "section"),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("tag", Key, nullable=False),
    Column("digest", Key),
    *_columns(Text, "reference", "display_name", nullable=False),
    Column("requires_prepulled", Boolean, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("message_id", Key, nullable=False, unique=True),
    Column("routing_key", Key, nullable=False),
    *_columns(JSONB, "body", "headers", nullable=False),
    _stamp("created_at"),
    Column("published_at", Time),
    Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
)

messages = Table(
    "messages",
    metadata,
    Column("message_id", Key, primary_key=True),
    Column("body_sha256", Key, nullable=False),
    Column("routing_key", Key, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Index("ix_messages_recorded_at", "recorded_at"),
)

PROJECTION_TABLES = (
    tags,
    tag_history,
    nodes,
    node_images,
    image_presence,
    refreshes,
    policies,
)
"""Tables the event fold writes; ``rebuild`` empties and refills them."""
