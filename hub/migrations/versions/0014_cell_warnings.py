"""cell warnings: source, rule, explanation, episode on grid_cells; overrides; history (issue 12)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 12:45:00
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grid_cells") as batch:
        batch.add_column(sa.Column("warning_source", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("warning_rule", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("warning_explanation", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("warning_key", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("warning_episode", sa.String(length=36), nullable=True))
        batch.add_column(
            sa.Column("warning_version", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "cell_warning_overrides",
        sa.Column("cell_id", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cell_id"],
            ["grid_cells.id"],
            name=op.f("fk_cell_warning_overrides_cell_id_grid_cells"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cell_id", name=op.f("pk_cell_warning_overrides")),
    )
    op.create_index(
        op.f("ix_cell_warning_overrides_expires_at"),
        "cell_warning_overrides",
        ["expires_at"],
        unique=False,
    )
    op.create_table(
        "cell_warning_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("cell_id", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=True),
        sa.Column("previous_level", sa.String(length=16), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.String(length=36), nullable=True),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cell_id"],
            ["grid_cells.id"],
            name=op.f("fk_cell_warning_history_cell_id_grid_cells"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_warning_history")),
    )
    op.create_index(
        "ix_cell_warning_history_cell_id_id",
        "cell_warning_history",
        ["cell_id", "id"],
        unique=False,
    )
    _hand_set_warnings_become_overrides()


def _hand_set_warnings_become_overrides() -> None:
    """Colours set by hand before the rules existed become overrides lasting 24 hours from
    the upgrade (an override needs an expiry), so the upgrade does not clear them at once."""
    conn = op.get_bind()
    cells = sa.table(
        "grid_cells",
        sa.column("id", sa.String),
        sa.column("warning_level", sa.String),
        sa.column("warning_reason", sa.String),
        sa.column("warning_set_by", sa.String),
        sa.column("warning_set_at", sa.DateTime(timezone=True)),
    )
    overrides = sa.table(
        "cell_warning_overrides",
        sa.column("cell_id", sa.String),
        sa.column("level", sa.String),
        sa.column("reason", sa.String),
        sa.column("set_by", sa.String),
        sa.column("set_at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    rows = conn.execute(sa.select(cells).where(cells.c.warning_level.is_not(None))).all()
    if rows:
        conn.execute(
            overrides.insert(),
            [
                {
                    "cell_id": r.id,
                    "level": r.warning_level,
                    "reason": r.warning_reason or "set by hand before warning rules",
                    "set_by": r.warning_set_by or "unknown",
                    "set_at": r.warning_set_at or now,
                    "expires_at": now + timedelta(hours=24),
                }
                for r in rows
            ],
        )


def downgrade() -> None:
    op.drop_table("cell_warning_history")
    op.drop_table("cell_warning_overrides")
    with op.batch_alter_table("grid_cells") as batch:
        for name in (
            "warning_version",
            "warning_episode",
            "warning_key",
            "warning_explanation",
            "warning_rule",
            "warning_source",
        ):
            batch.drop_column(name)
