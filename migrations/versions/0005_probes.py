"""Schema ledger: node_images by (digest, node) instead of by digest alone.

The append statement runs on one plan made when it is first prepared (``worker.adapters.
eventlog``), whatever the table sizes were then. It looks node images up by (node, digest);
with an index on digest alone a plan made on small tables may probe that index and filter
by node, which reads every node's row of the digest once the tables are full. With both
columns in both indexes, either index is a one-row probe. Queries by digest alone use the
new index as they used the old one.

Revision ID: 0005_probes
Revises: 0004_planning
Create Date: 2077-01-04
"""

from __future__ import annotations

from alembic import op

revision = "0005_probes"
down_revision = "0004_planning"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Replace the digest index by a (digest, node) index."""
    op.create_index(
        "ix_node_images_digest_node", "node_images", ["digest", "node"], schema="ledger"
    )
    op.drop_index("ix_node_images_digest", table_name="node_images", schema="ledger")


def downgrade() -> None:
    """Back to the digest index."""
    op.create_index("ix_node_images_digest", "node_images", ["digest"], schema="ledger")
    op.drop_index("ix_node_images_digest_node", table_name="node_images", schema="ledger")
