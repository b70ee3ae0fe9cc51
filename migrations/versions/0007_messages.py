"""Schema ledger: messages, one row per folded message id with a hash of its body.

One message id, one effect: a redelivery with the same id and body adds nothing, and a body
different from the one recorded under a known id is dead-lettered. The row is written in the
transaction that folds the message; ``imageledger prune`` deletes old rows (by
``recorded_at``).

Revision ID: 0007_messages
Revises: 0006_no_processed_messages
Create Date: 2077-01-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_messages"
down_revision = "0006_no_processed_messages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table and its index for pruning."""
    op.create_table(
        "messages",
        sa.Column("message_id", sa.Text(collation="C"), primary_key=True),
        sa.Column("body_sha256", sa.Text(collation="C"), nullable=False),
        sa.Column("routing_key", sa.Text(collation="C"), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        schema="ledger",
    )
    op.create_index("ix_messages_recorded_at", "messages", ["recorded_at"], schema="ledger")


def downgrade() -> None:
    """Drop the table (and its index)."""
    op.drop_index("ix_messages_recorded_at", table_name="messages", schema="ledger")
    op.drop_table("messages", schema="ledger")
