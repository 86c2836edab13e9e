"""watchlist bundles in parts: per-part pushes, per-device progress (issue 15)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bundle_devices") as batch:
        batch.add_column(sa.Column("push_parts", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("push_set", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("parts_acked", sa.Integer(), nullable=True))
    with op.batch_alter_table("bundle_pushes") as batch:
        batch.add_column(sa.Column("part", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("parts", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("set_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bundle_pushes") as batch:
        batch.drop_column("set_sha256")
        batch.drop_column("parts")
        batch.drop_column("part")
    with op.batch_alter_table("bundle_devices") as batch:
        batch.drop_column("parts_acked")
        batch.drop_column("push_set")
        batch.drop_column("push_parts")
