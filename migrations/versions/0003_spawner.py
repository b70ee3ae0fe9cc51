"""Schema dashboard: function image_for_tag (v1), the resolve operation in SQL.

Revision ID: 0003_spawner
Revises: 0002_dashboard
Create Date: 2077-01-02
"""

from __future__ import annotations

from alembic import op

from worker.adapters.ledger.migrate import view_sql

revision = "0003_spawner"
down_revision = "0002_dashboard"
branch_labels = None
depends_on = None

READER = "imageledger_reader"
FUNCTIONS = {"image_for_tag": "text"}


def upgrade() -> None:
    """Create the functions; only the reader role (and the owner) may run them."""
    for name, arguments in FUNCTIONS.items():
        op.execute(view_sql(name, 1))
        op.execute(f"REVOKE ALL ON FUNCTION dashboard.{name}({arguments}) FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION dashboard.{name}({arguments}) TO {READER}")


def downgrade() -> None:
    """Drop the functions (their grants go with them)."""
    for name, arguments in FUNCTIONS.items():
        op.execute(f"DROP FUNCTION dashboard.{name}({arguments})")
