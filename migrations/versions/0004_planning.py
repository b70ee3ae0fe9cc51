"""Schema ledger: a partial index of the prepull pairs in flight or failed (planning reads).

Revision ID: 0004_planning
Revises: 0003_spawner
Create Date: 2077-01-03
"""

from __future__ import annotations

from alembic import op

revision = "0004_planning"
down_revision = "0003_spawner"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Every plan reads the pending pairs; without this it scans all of node_images."""
    op.create_index(
        "ix_node_images_pending",
        "node_images",
        ["node", "digest"],
        schema="ledger",
        postgresql_where="prepull_state IN ('requested', 'failed')",
    )


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_node_images_pending", table_name="node_images", schema="ledger")
