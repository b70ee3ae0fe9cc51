"""Schema ledger: the event log, projection tables, outbox and processed messages.

Revision ID: 0001_ledger
Revises:
Create Date: 2077-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None

S = "ledger"


def _at(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _c() -> sa.Text:
    """Text compared byte-wise (keys, names, digests)."""
    return sa.Text(collation="C")


def _key(*names: str) -> list[sa.Column[object]]:
    return [sa.Column(n, _c(), primary_key=True) for n in names]


def _log() -> None:
    op.create_table(
        "events",
        sa.Column("position", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("stream", _c(), nullable=False),
        sa.Column("type", _c(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", JSONB(), nullable=False),
        _at("occurred_at", nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column("idempotency_key", _c(), nullable=False, unique=True),
        sa.Column("causation", _c()),
        schema=S,
    )
    op.create_index("ix_events_stream_position", "events", ["stream", "position"], schema=S)


def _tags() -> None:
    op.create_table(
        "tags",
        *_key("registry", "repository", "tag"),
        sa.Column("digest", _c()),
        _at("first_seen_at", nullable=False),
        _at("changed_at", nullable=False),
        _at("removed_at"),
        sa.Column("history_seq", sa.Integer(), nullable=False),
        sa.Column("image_type", sa.Text(), nullable=False),
        sa.Column("type_rank", sa.SmallInteger(), nullable=False),
        sa.Column("sort_text", sa.Text(collation="C"), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("version", sa.Text()),
        sa.Column("cycle", sa.Integer()),
        sa.Column("cycle_build", sa.Integer()),
        sa.Column("build", sa.Integer()),
        sa.Column("extra", sa.Text()),
        sa.Column("architecture", sa.Text()),
        _at("tag_date"),
        schema=S,
    )
    op.create_index("ix_tags_digest", "tags", ["digest"], schema=S)
    op.create_table(
        "tag_history",
        *_key("registry", "repository", "tag"),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("digest", _c()),
        _at("valid_from", nullable=False),
        _at("valid_until"),
        schema=S,
    )
    op.create_index("ix_tag_history_tag_from", "tag_history", ["tag", "valid_from"], schema=S)
    op.create_index("ix_tag_history_digest_from", "tag_history", ["digest", "valid_from"], schema=S)


def _nodes() -> None:
    op.create_table(
        "nodes",
        *_key("node"),
        _at("first_seen_at", nullable=False),
        sa.Column("labels", JSONB(), nullable=False),
        sa.Column("taints", JSONB(), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text()),
        _at("seen_at"),
        _at("gone_at"),
        _at("last_inventory_at"),
        _at("last_complete_at"),
        sa.Column("truncated", sa.Boolean()),
        sa.Column("image_count", sa.Integer()),
        schema=S,
        postgresql_with={"fillfactor": 70},
    )
    op.create_table(
        "node_images",
        *_key("node", "digest"),
        sa.Column("present", sa.Boolean()),
        _at("observed_at"),
        sa.Column("source", _c()),
        sa.Column("size_bytes", sa.BigInteger()),
        _at("present_since"),
        sa.Column("prepull_state", _c()),
        sa.Column("prepull_requests", sa.Integer(), nullable=False),
        sa.Column("prepull_failures", sa.Integer(), nullable=False),
        sa.Column("prepull_failures_total", sa.Integer(), nullable=False),
        _at("prepull_requested_at"),
        _at("prepull_deadline"),
        _at("prepull_finished_at"),
        sa.Column("prepull_reason", sa.Text()),
        sa.Column("registry", _c()),
        sa.Column("repository", _c()),
        sa.Column("tag", _c()),
        schema=S,
        postgresql_with={"fillfactor": 70},
    )
    op.create_index("ix_node_images_digest", "node_images", ["digest"], schema=S)
    op.create_table(
        "image_presence",
        *_key("digest"),
        sa.Column("eligible_nodes", sa.Integer(), nullable=False),
        schema=S,
        postgresql_with={"fillfactor": 50},
    )


def _refreshes_and_policies() -> None:
    op.create_table(
        "refreshes",
        *_key("refresh_id"),
        sa.Column("registry", _c(), nullable=False),
        sa.Column("repository", _c(), nullable=False),
        sa.Column("status", _c(), nullable=False),
        _at("started_at", nullable=False),
        _at("finished_at"),
        sa.Column("tags_total", sa.Integer()),
        *(sa.Column(n, sa.Integer(), nullable=False) for n in ("discovered", "resolved")),
        *(sa.Column(n, sa.Integer(), nullable=False) for n in ("moved", "removed")),
        sa.Column("requests", JSONB(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("bytes_received", sa.BigInteger(), nullable=False),
        sa.Column("duration_seconds", sa.Float()),
        sa.Column("flagged_tags", ARRAY(sa.Text()), nullable=False),
        sa.Column("rate_limits", JSONB(), nullable=False),
        sa.Column("reason", sa.Text()),
        schema=S,
    )
    op.create_index(
        "ix_refreshes_repository_started",
        "refreshes",
        ["registry", "repository", "started_at"],
        schema=S,
    )
    op.create_table(
        "policies",
        *_key("registry", "repository"),
        _at("configured_at", nullable=False),
        sa.Column("recommended_tag", sa.Text(), nullable=False),
        *(sa.Column(f"num_{n}", sa.Integer(), nullable=False) for n in ("releases", "weeklies")),
        sa.Column("num_dailies", sa.Integer(), nullable=False),
        sa.Column("cycle", sa.Integer()),
        sa.Column("pin", ARRAY(sa.Text()), nullable=False),
        sa.Column("alias_tags", ARRAY(sa.Text()), nullable=False),
        sa.Column("dropdown", JSONB(), nullable=False),
        sa.Column("node_selector", JSONB(), nullable=False),
        sa.Column("tolerations", JSONB(), nullable=False),
        schema=S,
    )


def _derived() -> None:
    """Rows computed by the domain (images, prepull targets, menu) from the projections."""
    op.create_table(
        "images",
        *_key("registry", "repository", "tag"),
        sa.Column("digest", _c()),
        sa.Column("image_type", sa.Text(), nullable=False),
        sa.Column("type_rank", sa.SmallInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("alias_target", sa.Text()),
        sa.Column("aliases", ARRAY(sa.Text()), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("architecture", sa.Text()),
        sa.Column("size_bytes", sa.BigInteger()),
        schema=S,
    )
    op.create_index("ix_images_digest", "images", ["digest"], schema=S)
    op.create_table(
        "prepull_targets",
        *_key("registry", "repository", "tag"),
        sa.Column("digest", _c()),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("image_type", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger()),
        sa.Column("pull", sa.Boolean(), nullable=False),
        schema=S,
    )
    op.create_table(
        "menu_entries",
        *_key("registry", "repository", "section"),
        sa.Column("position", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("tag", _c(), nullable=False),
        sa.Column("digest", _c()),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("requires_prepulled", sa.Boolean(), nullable=False),
        schema=S,
    )


def _plumbing() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("message_id", _c(), nullable=False, unique=True),
        sa.Column("routing_key", _c(), nullable=False),
        sa.Column("body", JSONB(), nullable=False),
        sa.Column("headers", JSONB(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        _at("published_at"),
        schema=S,
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        schema=S,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "processed_messages",
        *_key("consumer", "message_id"),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        schema=S,
    )


def upgrade() -> None:
    """Create schema ``ledger`` and its tables; nobody but the owner may use it."""
    op.execute(f"CREATE SCHEMA {S}")
    op.execute(f"REVOKE ALL ON SCHEMA {S} FROM PUBLIC")
    _log()
    _tags()
    _nodes()
    _refreshes_and_policies()
    _derived()
    _plumbing()


def downgrade() -> None:
    """Drop schema ``ledger`` with everything in it."""
    op.execute(f"DROP SCHEMA {S} CASCADE")
