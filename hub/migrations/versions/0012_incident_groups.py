"""incidents: one live incident per alert group (unique group key)

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-01 12:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("uq_incidents_group_key", "incidents", ["group_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_incidents_group_key", table_name="incidents")
