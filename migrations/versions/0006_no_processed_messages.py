"""Schema ledger: drop processed_messages, which nothing wrote.

Idempotency comes from the events' keys (and the outbox's message ids), never from a table
of processed message ids; ``ledger.processed_messages`` was created by 0001 but no worker
wrote it, so it only misled readers and ``prune``. The downgrade recreates it as it was,
empty.

Revision ID: 0006_no_processed_messages
Revises: 0005_probes
Create Date: 2077-01-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_no_processed_messages"
down_revision = "0005_probes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Drop the table."""
    op.drop_table("processed_messages", schema="ledger")


def downgrade() -> None:
    """Recreate the table as 0001 made it."""
    op.create_table(
        "processed_messages",
        sa.Column("consumer", sa.Text(collation="C"), primary_key=True),
        sa.Column("message_id", sa.Text(collation="C"), primary_key=True),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        schema="ledger",
    )
