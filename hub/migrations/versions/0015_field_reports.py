"""field reports: grid workers' and Open311 clients' reports, idempotent by client id (issue 12)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 12:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "field_reports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("reporter", sa.String(length=64), nullable=False),
        sa.Column("client_report_id", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=True),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("category_source", sa.String(length=16), nullable=False),
        sa.Column("suggested_category", sa.String(length=64), nullable=True),
        sa.Column("suggested_confidence", sa.Float(), nullable=True),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("location_source", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("photo_count", sa.Integer(), nullable=False),
        sa.Column("has_voice", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_field_reports_incident_id_incidents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_reports")),
        sa.UniqueConstraint("number", name=op.f("uq_field_reports_number")),
    )
    op.create_index(
        op.f("ix_field_reports_incident_id"), "field_reports", ["incident_id"], unique=False
    )
    op.create_index(
        "uq_field_reports_reporter_client_report_id",
        "field_reports",
        ["reporter", "client_report_id"],
        unique=True,
    )
    op.create_index(
        "ix_field_reports_reporter_id", "field_reports", ["reporter", "id"], unique=False
    )
    op.create_index("ix_field_reports_created_at", "field_reports", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("field_reports")
