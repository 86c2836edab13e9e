"""move evidence snapshots out of alert payloads into the evidence table

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:35:00

Each alert whose payload still carries ``evidence.data_b64`` gets an ``evidence`` row; its
payload keeps only the reference (``evidence.id``, ``sha256``, size), as new alerts do.
Downgrade puts the bytes back into the payloads.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import sqlalchemy as sa
from alembic import op

from edge.validators import new_id

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CHUNK = 200
alerts = sa.table(
    "alerts",
    sa.column("id", sa.String),
    sa.column("site", sa.String),
    sa.column("device", sa.String),
    sa.column("received_at", sa.DateTime(timezone=True)),
    sa.column("payload", sa.JSON),
)
evidence = sa.table(
    "evidence",
    sa.column("id", sa.String),
    sa.column("alert_id", sa.String),
    sa.column("site", sa.String),
    sa.column("device", sa.String),
    sa.column("content_type", sa.String),
    sa.column("sha256", sa.String),
    sa.column("width", sa.Integer),
    sa.column("height", sa.Integer),
    sa.column("size_bytes", sa.Integer),
    sa.column("data", sa.LargeBinary),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def _chunks(conn: sa.Connection, pattern: str) -> Any:
    """Alerts whose payload text contains ``pattern``, in id order, a chunk at a time (an old
    database may hold many snapshots; never load them all at once)."""
    last = ""
    while True:
        rows = conn.execute(
            sa.select(alerts)
            .where(alerts.c.id > last, sa.cast(alerts.c.payload, sa.Text).like(pattern))
            .order_by(alerts.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def upgrade() -> None:
    conn = op.get_bind()
    for rows in _chunks(conn, '%"data_b64"%'):
        for row in rows:
            payload = dict(row.payload)
            ev = payload.get("evidence")
            if not isinstance(ev, dict) or "data_b64" not in ev:
                continue
            data = base64.b64decode(ev["data_b64"])
            ev_id = new_id()
            conn.execute(
                evidence.insert().values(
                    id=ev_id,
                    alert_id=row.id,
                    site=row.site,
                    device=row.device,
                    content_type=ev.get("content_type", "image/jpeg"),
                    sha256=hashlib.sha256(data).hexdigest(),
                    width=ev.get("width"),
                    height=ev.get("height"),
                    size_bytes=len(data),
                    data=data,
                    created_at=row.received_at,
                )
            )
            payload["evidence"] = {
                "id": ev_id,
                "content_type": ev.get("content_type", "image/jpeg"),
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_bytes": len(data),
                **{k: ev[k] for k in ("width", "height") if ev.get(k) is not None},
            }
            conn.execute(alerts.update().where(alerts.c.id == row.id).values(payload=payload))


def downgrade() -> None:
    conn = op.get_bind()
    for rows in _chunks(conn, '%"evidence"%'):
        for row in rows:
            payload = dict(row.payload)
            ref = payload.get("evidence")
            if not isinstance(ref, dict) or "id" not in ref:
                continue
            ev = conn.execute(sa.select(evidence).where(evidence.c.id == ref["id"])).first()
            if ev is None:  # expired by retention: the alert keeps no snapshot
                payload.pop("evidence")
            else:
                payload["evidence"] = {
                    "content_type": ev.content_type,
                    "data_b64": base64.b64encode(ev.data).decode("ascii"),
                    "sha256": ev.sha256,
                    **{k: getattr(ev, k) for k in ("width", "height") if getattr(ev, k)},
                }
            conn.execute(alerts.update().where(alerts.c.id == row.id).values(payload=payload))
    conn.execute(evidence.delete())
