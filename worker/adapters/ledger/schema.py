"""SQLAlchemy table models of schema ``ledger``, for queries and for ``alembic check``.

The migrations in ``migrations/versions`` create these tables; ``alembic check`` fails when
the two disagree. Views and functions of schema ``dashboard`` are plain SQL files
(``migrations/views``) and are not modelled here.
"""

from __future__ import annotations

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


def _at(name: str, nullable: bool = True) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


events = Table(
    "events",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("stream", Key, nullable=False),
    Column("type", Key, nullable=False),
    Column("version", Integer, nullable=False),
    Column("data", JSONB, nullable=False),
    _at("occurred_at", nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("idempotency_key", Key, nullable=False, unique=True),
    Column("causation", Key),
    Index("ix_events_stream_position", "stream", "position"),
)

tags = Table(
    "tags",
    metadata,
    Column("registry", Key, primary_key=True),
    Column("repository", Key, primary_key=True),
    Column("tag", Key, primary_key=True),
    Column("digest", Key),
    _at("first_seen_at", nullable=False),
    _at("changed_at", nullable=False),
    _at("removed_at"),
    Column("history_seq", Integer, nullable=False),
    Column("image_type", Text, nullable=False),
    Column("type_rank", SmallInteger, nullable=False),
    Column("sort_text", Key, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("version", Text),
    Column("cycle", Integer),
    Column("cycle_build", Integer),
    Column("build", Integer),
    Column("extra", Text),
    Column("architecture", Text),
    _at("tag_date"),
    Index("ix_tags_digest", "digest"),
)

tag_history = Table(
    "tag_history",
    metadata,
    Column("registry", Key, primary_key=True),
    Column("repository", Key, primary_key=True),
    Column("tag", Key, primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("digest", Key),
    _at("valid_from", nullable=False),
    _at("valid_until"),
    Index("ix_tag_history_tag_from", "tag", "valid_from"),
    Index("ix_tag_history_digest_from", "digest", "valid_from"),
)

nodes = Table(
    "nodes",
    metadata,
    Column("node", Key, primary_key=True),
    _at("first_seen_at", nullable=False),
    Column("labels", JSONB, nullable=False),
    Column("taints", JSONB, nullable=False),
    Column("eligible", Boolean, nullable=False),
    Column("comment", Text),
    _at("seen_at"),
    _at("gone_at"),
    _at("last_inventory_at"),
    _at("last_complete_at"),
    Column("truncated", Boolean),
    Column("image_count", Integer),
    postgresql_with={"fillfactor": 70},
)

node_images = Table(
    "node_images",
    metadata,
    Column("node", Key, primary_key=True),
    Column("digest", Key, primary_key=True),
    Column("present", Boolean),
    _at("observed_at"),
    Column("source", Key),
    Column("size_bytes", BigInteger),
    _at("present_since"),
    Column("prepull_state", Key),
    Column("prepull_requests", Integer, nullable=False),
    Column("prepull_failures", Integer, nullable=False),
    Column("prepull_failures_total", Integer, nullable=False),
    _at("prepull_requested_at"),
    _at("prepull_deadline"),
    _at("prepull_finished_at"),
    Column("prepull_reason", Text),
    Column("registry", Key),
    Column("repository", Key),
    Column("tag", Key),
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
    Column("digest", Key, primary_key=True),
    Column("eligible_nodes", Integer, nullable=False),
    postgresql_with={"fillfactor": 50},
)

refreshes = Table(
    "refreshes",
    metadata,
    Column("refresh_id", Key, primary_key=True),
    Column("registry", Key, nullable=False),
    Column("repository", Key, nullable=False),
    Column("status", Key, nullable=False),
    _at("started_at", nullable=False),
    _at("finished_at"),
    Column("tags_total", Integer),
    Column("discovered", Integer, nullable=False),
    Column("resolved", Integer, nullable=False),
    Column("moved", Integer, nullable=False),
    Column("removed", Integer, nullable=False),
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
    Column("registry", Key, primary_key=True),
    Column("repository", Key, primary_key=True),
    _at("configured_at", nullable=False),
    Column("recommended_tag", Text, nullable=False),
    Column("num_releases", Integer, nullable=False),
    Column("num_weeklies", Integer, nullable=False),
    Column("num_dailies", Integer, nullable=False),
    Column("cycle", Integer),
    Column("pin", ARRAY(Text), nullable=False),
    Column("alias_tags", ARRAY(Text), nullable=False),
    Column("dropdown", JSONB, nullable=False),
    Column("node_selector", JSONB, nullable=False),
    Column("tolerations", JSONB, nullable=False),
)

images = Table(
    "images",
    metadata,
    Column("registry", Key, primary_key=True),
    Column("repository", Key, primary_key=True),
    Column("tag", Key, primary_key=True),
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
    Column("registry", Key, primary_key=True),
    Column("repository", Key, primary_key=True),
    Column("tag", Key, primary_key=True),
    Column("digest", Key),
    Column("position", Integer, nullable=False),
    Column("reference", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("image_type", Text, nullable=False),
    Column("size_bytes", BigInteger),
    Column("pull", Boolean, nullable=False),
)

menu_entries = Table(
    "menu_entries",
    metadata,
    Column("registry", Key, primary_key=True),
    Column("repository", Key, primary_key=True),
    Column("section", Key, primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("tag", Key, nullable=False),
    Column("digest", Key),
    Column("reference", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("requires_prepulled", Boolean, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("message_id", Key, nullable=False, unique=True),
    Column("routing_key", Key, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("headers", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    _at("published_at"),
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
