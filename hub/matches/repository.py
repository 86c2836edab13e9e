"""SQL of the face match review (SQLAlchemy Core): matches, reviews, face crops."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from edge.protocol import AlertKind
from hub.schema import (
    alerts,
    dispatches,
    evidence,
    face_crops,
    incidents,
    match_reviews,
    matches,
)

M = matches
R = match_reviews
STATUSES = ("pending", "confirmed", "rejected", "expired")
_IN_CHUNK = 500


def _with_incident() -> Any:
    return select(M, incidents.c.number.label("incident_number")).select_from(
        M.outerjoin(incidents, incidents.c.id == M.c.incident_id)
    )


def insert_match(conn: Connection, values: dict[str, Any]) -> bool:
    """False when the alert has its match already (a resend, another replica)."""
    if conn.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(M)
    else:
        stmt = sqlite.insert(M)
    stmt = stmt.values(**values).on_conflict_do_nothing(index_elements=["alert_id"])
    return conn.execute(stmt.returning(M.c.id)).first() is not None


def get(conn: Connection, match_id: str) -> Any | None:
    return conn.execute(_with_incident().where(M.c.id == match_id)).first()


def lock(conn: Connection, match_id: str) -> Any | None:
    """The match row, locked for the rest of the transaction (PostgreSQL; SQLite's write
    transaction holds the database lock already)."""
    return conn.execute(select(M).where(M.c.id == match_id).with_for_update()).first()


def by_alert(conn: Connection, alert_id: str) -> Any | None:
    return conn.execute(_with_incident().where(M.c.alert_id == alert_id)).first()


def by_ids(conn: Connection, ids: Collection[str]) -> list[Any]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    return list(conn.execute(_with_incident().where(M.c.id.in_(wanted))).all())


def page(conn: Connection, status: str | None, *, limit: int, after: str | None) -> list[Any]:
    """Newest first (ids are time-ordered)."""
    stmt = _with_incident().order_by(M.c.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(M.c.status == status)
    if after is not None:
        stmt = stmt.where(M.c.id < after)
    return list(conn.execute(stmt).all())


def all_rows(conn: Connection, status: str | None, limit: int) -> list[Any]:
    stmt = _with_incident().order_by(M.c.id).limit(limit)
    if status is not None:
        stmt = stmt.where(M.c.status == status)
    return list(conn.execute(stmt).all())


def decide(conn: Connection, match_id: str, status: str, now: datetime) -> bool:
    """Move a pending match to ``status``; False when it is not pending any more (the claim:
    only one transaction, on any replica, ever decides a match)."""
    res = conn.execute(
        update(M)
        .where(M.c.id == match_id, M.c.status == "pending")
        .values(status=status, decided_at=now)
    )
    return res.rowcount == 1


def set_values(conn: Connection, match_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(M).where(M.c.id == match_id).values(**values))


def overdue_pending(conn: Connection, before: datetime, limit: int) -> list[str]:
    stmt = (
        select(M.c.id)
        .where(M.c.status == "pending", M.c.created_at < before)
        .order_by(M.c.created_at)
        .limit(limit)
    )
    return [str(i) for i in conn.execute(stmt).scalars()]


def crops_due(conn: Connection, decided_before: datetime, limit: int) -> list[Any]:
    """Rejected or expired matches decided before ``decided_before`` whose images remain."""
    stmt = (
        select(M.c.id, M.c.alert_id)
        .where(
            M.c.status.in_(("rejected", "expired")),
            M.c.decided_at < decided_before,
            M.c.crop_deleted_at.is_(None),
        )
        .order_by(M.c.decided_at)
        .limit(limit)
    )
    return list(conn.execute(stmt).all())


def delete_images(conn: Connection, alert_id: str) -> tuple[int, int]:
    """Delete the alert's face crop and frame snapshot; (crops, snapshots) deleted."""
    crops = conn.execute(delete(face_crops).where(face_crops.c.alert_id == alert_id)).rowcount
    snaps = conn.execute(delete(evidence).where(evidence.c.alert_id == alert_id)).rowcount
    return int(crops), int(snaps)


# --- reviews -----------------------------------------------------------------------------------


def insert_review(conn: Connection, values: dict[str, Any]) -> bool:
    """False when this reviewer has decided this match already."""
    if conn.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(R)
    else:
        stmt = sqlite.insert(R)
    stmt = stmt.values(**values).on_conflict_do_nothing(index_elements=["match_id", "reviewer"])
    return conn.execute(stmt.returning(R.c.match_id)).first() is not None


def reviews_of(conn: Connection, match_ids: Collection[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    ids = sorted(set(match_ids))
    for start in range(0, len(ids), _IN_CHUNK):
        stmt = select(R).where(R.c.match_id.in_(ids[start : start + _IN_CHUNK])).order_by(R.c.at)
        for r in conn.execute(stmt):
            out.setdefault(r.match_id, []).append(r)
    return out


# --- alerts and images -------------------------------------------------------------------------


def face_match_alerts(conn: Connection, alert_ids: Collection[str]) -> list[Any]:
    ids = sorted(set(alert_ids))
    if not ids:
        return []
    stmt = select(alerts).where(alerts.c.id.in_(ids), alerts.c.kind == AlertKind.FACE_MATCH.value)
    return list(conn.execute(stmt).all())


def alerts_without_match(conn: Connection, since: datetime, limit: int) -> list[str]:
    """face_match alerts received since ``since`` that have no match row (ingest's after-store
    hook did not run: a crash between the commit and the hook)."""
    stmt = (
        select(alerts.c.id)
        .where(
            alerts.c.kind == AlertKind.FACE_MATCH.value,
            alerts.c.received_at >= since,
            ~alerts.c.id.in_(select(M.c.alert_id)),
        )
        .order_by(alerts.c.received_at)
        .limit(limit)
    )
    return [str(i) for i in conn.execute(stmt).scalars()]


def crop(conn: Connection, alert_id: str) -> bytes | None:
    data = conn.execute(
        select(face_crops.c.data).where(face_crops.c.alert_id == alert_id)
    ).scalar_one_or_none()
    return bytes(data) if data is not None else None


def snapshot(conn: Connection, alert_id: str) -> bytes | None:
    stmt = (
        select(evidence.c.data)
        .where(evidence.c.alert_id == alert_id)
        .order_by(evidence.c.created_at)
        .limit(1)
    )
    data = conn.execute(stmt).scalar_one_or_none()
    return bytes(data) if data is not None else None


# Dispatch states in which an officer is no longer sent to the incident (declined, let time
# out, called off): such an officer neither sees the match nor records its outcome.
_NOT_SENT = ("rejected", "cancelled", "timed_out")


def _sent(officer: str) -> tuple[Any, ...]:
    return dispatches.c.officer == officer, dispatches.c.state.not_in(_NOT_SENT)


def officer_dispatched(conn: Connection, incident_id: str, officer: str) -> bool:
    """Whether the officer was sent to the incident: a dispatch of theirs they did not
    decline, let time out, or see cancelled."""
    stmt = (
        select(func.count())
        .select_from(dispatches)
        .where(dispatches.c.incident_id == incident_id, *_sent(officer))
    )
    return int(conn.execute(stmt).scalar_one()) > 0


def of_officer_incidents(
    conn: Connection, officer: str, incident_ids: Collection[str]
) -> list[Any]:
    """The confirmed matches of those of ``incident_ids`` the officer is sent to (the same
    rule as :func:`officer_dispatched`), with how many reviewers confirmed each."""
    ids = sorted(set(incident_ids))
    if not ids:
        return []
    sent = (
        select(dispatches.c.id)
        .where(dispatches.c.incident_id == M.c.incident_id, *_sent(officer))
        .exists()
    )
    out: list[Any] = []
    for start in range(0, len(ids), _IN_CHUNK):
        stmt = (
            _with_confirmations()
            .where(M.c.incident_id.in_(ids[start : start + _IN_CHUNK]), M.c.status == "confirmed")
            .where(sent)
            .order_by(M.c.id)
        )
        out.extend(conn.execute(stmt).all())
    return out


def with_confirmations(conn: Connection, match_id: str) -> Any | None:
    """The match row with how many reviewers confirmed it."""
    return conn.execute(_with_confirmations().where(M.c.id == match_id)).first()


def _with_confirmations() -> Any:
    confirms = (
        select(func.count())
        .select_from(R)
        .where(R.c.match_id == M.c.id, R.c.decision == "confirm")
        .scalar_subquery()
    )
    return select(M, confirms.label("confirmations"))
