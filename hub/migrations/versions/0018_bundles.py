"""watchlist bundles: the hub-wide version, versions issued, device bundle keys, pushes (issue 15)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ID = sa.String(length=64)


def upgrade() -> None:
    state = op.create_table(
        "bundle_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("issued_at", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("issued_by", ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bundle_state")),
    )
    # The row every version claim locks: present from the start, so no replica races to make it.
    op.bulk_insert(state, [{"id": 1, "version": 0, "entries": 0}])
    op.create_table(
        "bundle_versions",
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("issued_by", ID, nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_bundle_versions")),
    )
    op.create_table(
        "bundle_devices",
        sa.Column("device", ID, nullable=False),
        sa.Column("site", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key_b64", sa.String(length=44), nullable=True),
        sa.Column("key_registered_at", TS, nullable=True),
        sa.Column("key_changed_at", TS, nullable=True),
        sa.Column("pushed_key_b64", sa.String(length=44), nullable=True),
        sa.Column("version_pushed", sa.BigInteger(), nullable=True),
        sa.Column("pushed_at", TS, nullable=True),
        sa.Column("push_command_id", sa.String(length=36), nullable=True),
        sa.Column("push_entries", sa.Integer(), nullable=True),
        sa.Column("version_applied", sa.BigInteger(), nullable=True),
        sa.Column("applied_at", TS, nullable=True),
        sa.Column("version_reported", sa.BigInteger(), nullable=True),
        sa.Column("reported_at", TS, nullable=True),
        sa.Column("failed_version", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("last_error_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["device"],
            ["devices.id"],
            name=op.f("fk_bundle_devices_device_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device", name=op.f("pk_bundle_devices")),
    )
    op.create_table(
        "bundle_pushes",
        sa.Column("command_id", sa.String(length=36), nullable=False),
        sa.Column("device", ID, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("pushed_at", TS, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("answered_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("command_id", name=op.f("pk_bundle_pushes")),
    )
    op.create_index(op.f("ix_bundle_pushes_device"), "bundle_pushes", ["device"], unique=False)


def downgrade() -> None:
    op.drop_table("bundle_pushes")
    op.drop_table("bundle_devices")
    op.drop_table("bundle_versions")
    op.drop_table("bundle_state")
