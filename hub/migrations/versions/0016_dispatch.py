"""dispatch: officers (duty, bound glasses), dispatches, rounds, answers (issue 14)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "officers",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("on_duty", sa.Boolean(), nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["username"],
            ["users.username"],
            name=op.f("fk_officers_username_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["device"], ["devices.id"], name=op.f("fk_officers_device_devices"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_officers")),
    )
    op.create_index("uq_officers_device", "officers", ["device"], unique=True)
    op.create_table(
        "dispatches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("officer", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("notify_id", sa.String(length=36), nullable=False),
        sa.Column("notified_at", TS, nullable=False),
        sa.Column("respond_by", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("last_answer", sa.String(length=16), nullable=True),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("alert_id", sa.String(length=36), nullable=True),
        sa.Column("cancel_reason", sa.String(length=500), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_dispatches_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatches")),
        sa.UniqueConstraint("notify_id", name=op.f("uq_dispatches_notify_id")),
    )
    op.create_index(
        "ix_dispatches_incident_id_round", "dispatches", ["incident_id", "round"], unique=False
    )
    op.create_index("ix_dispatches_officer_state", "dispatches", ["officer", "state"], unique=False)
    op.create_index("ix_dispatches_delivered_at", "dispatches", ["delivered_at"], unique=False)
    op.create_table(
        "dispatch_rounds",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("fired_at", TS, nullable=True),
        sa.Column("fired_by", sa.String(length=64), nullable=True),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_dispatch_rounds_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_rounds")),
    )
    op.create_index("ix_dispatch_rounds_fired_at_due_at", "dispatch_rounds", ["fired_at", "due_at"])
    op.create_index(
        "uq_dispatch_rounds_incident_id_round",
        "dispatch_rounds",
        ["incident_id", "round"],
        unique=True,
    )
    op.create_table(
        "dispatch_answers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("dispatch_id", sa.String(length=36), nullable=False),
        sa.Column("notify_id", sa.String(length=36), nullable=True),
        sa.Column("officer", sa.String(length=64), nullable=False),
        sa.Column("answer", sa.String(length=16), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_answers")),
    )
    op.create_index(
        op.f("ix_dispatch_answers_dispatch_id"), "dispatch_answers", ["dispatch_id"], unique=False
    )
    op.create_index("ix_dispatch_answers_outcome", "dispatch_answers", ["outcome"], unique=False)


def downgrade() -> None:
    op.drop_table("dispatch_answers")
    op.drop_table("dispatch_rounds")
    op.drop_table("dispatches")
    op.drop_table("officers")
