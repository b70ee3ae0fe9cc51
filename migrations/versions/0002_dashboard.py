"""Schema dashboard: views and functions (v1) and the read-only role imageledger_reader.

Revision ID: 0002_dashboard
Revises: 0001_ledger
Create Date: 2077-01-01
"""

from __future__ import annotations

from alembic import op

from worker.adapters.ledger.migrate import view_sql

revision = "0002_dashboard"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None

READER = "imageledger_reader"
VIEWS = (
    "tags",
    "images",
    "tag_history",
    "nodes",
    "node_images",
    "prepull_targets",
    "prepull_status",
    "prepull_queue",
    "menu",
    "refreshes",
    "image_rollout",
)
FUNCTIONS = {
    "tag_digest_at": "text, timestamptz",
    "node_images_at": "text, timestamptz",
}

CREATE_READER = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{READER}') THEN
        CREATE ROLE {READER} NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created meanwhile by a migration of another database of this cluster
END
$$
"""


def upgrade() -> None:
    """Create the views and functions; let the reader role read them and nothing else."""
    op.execute("CREATE SCHEMA dashboard")
    op.execute("REVOKE ALL ON SCHEMA dashboard FROM PUBLIC")
    for name in VIEWS:
        op.execute(view_sql(name, 1))
    for name, arguments in FUNCTIONS.items():
        op.execute(view_sql(name, 1))
        op.execute(f"REVOKE ALL ON FUNCTION dashboard.{name}({arguments}) FROM PUBLIC")
    op.execute(CREATE_READER)
    op.execute(f"GRANT USAGE ON SCHEMA dashboard TO {READER}")
    op.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA dashboard TO {READER}")
    op.execute(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA dashboard TO {READER}")


def downgrade() -> None:
    """Drop schema dashboard. The role is cluster-wide and stays; its grants here go."""
    op.execute(f"REVOKE ALL ON SCHEMA dashboard FROM {READER}")
    op.execute("DROP SCHEMA dashboard CASCADE")
