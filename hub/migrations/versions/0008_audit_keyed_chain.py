"""audit log: keyed HMAC chain marker and checkpoint lookup index

Existing records keep their unkeyed SHA-256 links and are marked ``sha256``: the verifier reports
them as legacy, unkeyed. Records written from now on are HMAC-SHA256 (``hmac-sha256``).

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-01 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("chain", sa.String(length=16), server_default="sha256", nullable=False)
        )
        batch_op.create_index("ix_audit_log_action_seq", ["action", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_action_seq")
        batch_op.drop_column("chain")
