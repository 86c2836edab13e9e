"""matches: possible face matches, their reviews, and the face crops of face_match alerts (issue 15)

Revision ID: 0019
Revises: 0016 (0018 once the watchlists and bundles migrations are merged: relink then)
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "face_crops",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_face_crops_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_face_crops")),
    )
    op.create_index(op.f("ix_face_crops_created_at"), "face_crops", ["created_at"], unique=False)
    op.create_table(
        "matches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("entry_id", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("bundle_version", sa.Integer(), nullable=False),
        sa.Column("backend", sa.String(length=64), nullable=False),
        sa.Column("frames_matched", sa.Integer(), nullable=False),
        sa.Column("frames_seen", sa.Integer(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("seen_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reviews_needed", sa.Integer(), nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("incident_id", sa.String(length=36), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("outcome_note", sa.String(length=500), nullable=True),
        sa.Column("outcome_by", sa.String(length=64), nullable=True),
        sa.Column("outcome_at", TS, nullable=True),
        sa.Column("crop_deleted_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_matches_incident_id_incidents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matches")),
        sa.UniqueConstraint("alert_id", name=op.f("uq_matches_alert_id")),
    )
    op.create_index(op.f("ix_matches_entry_id"), "matches", ["entry_id"], unique=False)
    op.create_index("ix_matches_status_seen_at", "matches", ["status", "seen_at"], unique=False)
    op.create_table(
        "match_reviews",
        sa.Column("match_id", sa.String(length=36), nullable=False),
        sa.Column("reviewer", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["match_id"],
            ["matches.id"],
            name=op.f("fk_match_reviews_match_id_matches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("match_id", "reviewer", name=op.f("pk_match_reviews")),
    )


def downgrade() -> None:
    op.drop_table("match_reviews")
    op.drop_table("matches")
    op.drop_table("face_crops")
