"""entity owners: the first device to report an entity's position owns it (issue 11, item 3)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entity_owners",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("entity_kind", sa.String(length=16), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", "entity", name=op.f("pk_entity_owners")),
    )


def downgrade() -> None:
    op.drop_table("entity_owners")
