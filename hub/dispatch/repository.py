"""SQL of dispatch (SQLAlchemy Core): officers, dispatches, rounds and answers."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from hub.auth import Role
from hub.schema import (
    alerts,
    command_outbox,
    device_state,
    devices,
    dispatch_answers,
    dispatch_rounds,
    dispatches,
    evidence,
    grid_cells,
    incidents,
    latest_positions,
    officers,
    team_members,
    users,
)

D = dispatches
OPEN_STATES = ("notified", "acknowledged", "en_route", "on_scene", "verified")
BUSY_STATES = ("acknowledged", "en_route", "on_scene", "verified")
STATES = (*OPEN_STATES, "rejected", "timed_out", "cancelled", "done")
_IN_CHUNK = 500


# --- officers ----------------------------------------------------------------------------------


def officer_users(conn: Connection, username: str | None = None) -> list[Any]:
    """Active users of role officer with their duty row (None columns when never set)."""
    stmt = (
        select(
            users.c.username,
            users.c.display_name,
            officers.c.device,
            func.coalesce(officers.c.on_duty, False).label("on_duty"),
            officers.c.since,
        )
        .select_from(users.outerjoin(officers, officers.c.username == users.c.username))
        .where(users.c.role == Role.OFFICER.value, users.c.active.is_(True))
        .order_by(users.c.username)
    )
    if username is not None:
        stmt = stmt.where(users.c.username == username)
    return list(conn.execute(stmt).all())


def officer_of_device(conn: Connection, device: str) -> str | None:
    return conn.execute(
        select(officers.c.username).where(officers.c.device == device)
    ).scalar_one_or_none()


def duty_row(conn: Connection, username: str) -> Any | None:
    return conn.execute(select(officers).where(officers.c.username == username)).first()


def upsert_officer(conn: Connection, values: dict[str, Any]) -> None:
    if duty_row(conn, values["username"]) is None:
        conn.execute(insert(officers).values(**values))
    else:
        conn.execute(
            update(officers).where(officers.c.username == values["username"]).values(**values)
        )


def device(conn: Connection, device_id: str) -> Any | None:
    return conn.execute(select(devices).where(devices.c.id == device_id)).first()


def device_states(conn: Connection, device_ids: Collection[str]) -> dict[str, str]:
    """The newest retained state of each device (any site)."""
    found: dict[str, tuple[datetime, str]] = {}
    ids = sorted(set(device_ids))
    for start in range(0, len(ids), _IN_CHUNK):
        stmt = select(device_state.c.device, device_state.c.state, device_state.c.ts).where(
            device_state.c.device.in_(ids[start : start + _IN_CHUNK])
        )
        for r in conn.execute(stmt):
            if r.device not in found or found[r.device][0] < r.ts:
                found[r.device] = (r.ts, r.state)
    return {k: v[1] for k, v in found.items()}


def latest_fixes(conn: Connection, usernames: Collection[str]) -> dict[str, Any]:
    """The newest officer fix of each username (``latest_positions`` rows)."""
    t = latest_positions
    found: dict[str, Any] = {}
    names = sorted(set(usernames))
    for start in range(0, len(names), _IN_CHUNK):
        stmt = select(t).where(
            t.c.entity_kind == "officer", t.c.entity.in_(names[start : start + _IN_CHUNK])
        )
        for r in conn.execute(stmt):
            if r.entity not in found or found[r.entity].ts < r.ts:
                found[r.entity] = r
    return found


def busy_with(conn: Connection) -> dict[str, str]:
    """officer -> the incident they are working on (their newest busy dispatch)."""
    stmt = select(D.c.officer, D.c.incident_id).where(D.c.state.in_(BUSY_STATES)).order_by(D.c.id)
    return {r.officer: r.incident_id for r in conn.execute(stmt)}


def team_usernames(conn: Connection, cell_id: str | None) -> set[str]:
    if cell_id is None:
        return set()
    stmt = (
        select(team_members.c.username)
        .join(grid_cells, grid_cells.c.team_id == team_members.c.team_id)
        .where(grid_cells.c.id == cell_id)
    )
    return set(conn.execute(stmt).scalars())


def active_commanders(conn: Connection) -> list[str]:
    stmt = (
        select(users.c.username)
        .where(users.c.role == Role.COMMANDER.value, users.c.active.is_(True))
        .order_by(users.c.username)
    )
    return [str(u) for u in conn.execute(stmt).scalars()]


# --- dispatches --------------------------------------------------------------------------------


def insert_dispatch(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(D).values(**values))


def get(conn: Connection, dispatch_id: str, *, for_update: bool = False) -> Any | None:
    stmt = select(D).where(D.c.id == dispatch_id)
    if for_update:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def of_incident(conn: Connection, incident_id: str) -> list[Any]:
    return list(conn.execute(select(D).where(D.c.incident_id == incident_id).order_by(D.c.id)))


def by_ids(conn: Connection, ids: Iterable[str]) -> list[Any]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    return list(conn.execute(select(D).where(D.c.id.in_(wanted)).order_by(D.c.id)))


def open_of_officer(conn: Connection, officer: str) -> list[Any]:
    """The officer's open dispatches with the Notify that carried each and the incident."""
    stmt = (
        select(
            D,
            command_outbox.c.payload.label("notify_payload"),
            command_outbox.c.created_at.label("issued_at"),
            incidents.c.level.label("incident_level"),
        )
        .join(command_outbox, command_outbox.c.id == D.c.notify_id)
        .join(incidents, incidents.c.id == D.c.incident_id)
        .where(D.c.officer == officer, D.c.state.in_(OPEN_STATES))
        .order_by(D.c.id)
    )
    return list(conn.execute(stmt).all())


def update_state(
    conn: Connection, dispatch_id: str, from_states: Collection[str], values: dict[str, Any]
) -> bool:
    res = conn.execute(
        update(D).where(D.c.id == dispatch_id, D.c.state.in_(tuple(from_states))).values(**values)
    )
    return res.rowcount == 1


def close_open_of_incident(
    conn: Connection, incident_id: str, from_states: Collection[str], values: dict[str, Any]
) -> list[str]:
    """Set ``values`` on the incident's dispatches in ``from_states``; returns their ids."""
    ids = list(
        conn.execute(
            select(D.c.id).where(D.c.incident_id == incident_id, D.c.state.in_(tuple(from_states)))
        ).scalars()
    )
    if ids:
        conn.execute(update(D).where(D.c.id.in_(ids)).values(**values))
    return ids


def time_out_round(conn: Connection, incident_id: str, round_no: int, now: datetime) -> list[str]:
    ids = list(
        conn.execute(
            select(D.c.id).where(
                D.c.incident_id == incident_id, D.c.round == round_no, D.c.state == "notified"
            )
        ).scalars()
    )
    if ids:
        conn.execute(update(D).where(D.c.id.in_(ids)).values(state="timed_out", updated_at=now))
    return ids


def mark_delivered(conn: Connection) -> list[str]:
    """Copy the command outbox's answer time onto dispatches whose Notify the device answered;
    returns the dispatch ids marked."""
    stmt = (
        select(D.c.id, command_outbox.c.answered_at)
        .join(command_outbox, command_outbox.c.id == D.c.notify_id)
        .where(
            D.c.delivered_at.is_(None),
            D.c.state.in_(OPEN_STATES),
            command_outbox.c.state == "answered",
            command_outbox.c.answered_at.is_not(None),
        )
    )
    rows = conn.execute(stmt).all()
    for r in rows:
        conn.execute(
            update(D)
            .where(D.c.id == r.id, D.c.delivered_at.is_(None))
            .values(delivered_at=r.answered_at)
        )
    return [r.id for r in rows]


# --- rounds ------------------------------------------------------------------------------------


def insert_round(conn: Connection, incident_id: str, round_no: int, due_at: datetime) -> bool:
    """The round's timer; False when the incident already has this round (another hub)."""
    if conn.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(dispatch_rounds)
    else:
        stmt = sqlite.insert(dispatch_rounds)
    stmt = stmt.values(
        incident_id=incident_id, round=round_no, due_at=due_at, cancelled=False
    ).on_conflict_do_nothing(index_elements=["incident_id", "round"])
    # RETURNING, not rowcount: the row really inserted, on every backend and driver.
    return conn.execute(stmt.returning(dispatch_rounds.c.id)).first() is not None


def due_rounds(conn: Connection, now: datetime, limit: int) -> list[Any]:
    t = dispatch_rounds
    stmt = (
        select(t)
        .where(t.c.fired_at.is_(None), t.c.cancelled.is_(False), t.c.due_at <= now)
        .order_by(t.c.due_at, t.c.id)
        .limit(limit)
    )
    return list(conn.execute(stmt).all())


def claim_round(conn: Connection, round_id: int, now: datetime, hub_id: str) -> bool:
    t = dispatch_rounds
    res = conn.execute(
        update(t)
        .where(t.c.id == round_id, t.c.fired_at.is_(None), t.c.cancelled.is_(False))
        .values(fired_at=now, fired_by=hub_id)
    )
    return res.rowcount == 1


def cancel_rounds(conn: Connection, incident_id: str) -> int:
    t = dispatch_rounds
    res = conn.execute(
        update(t)
        .where(t.c.incident_id == incident_id, t.c.fired_at.is_(None), t.c.cancelled.is_(False))
        .values(cancelled=True)
    )
    return int(res.rowcount)


def stretch_round(conn: Connection, round_id: int, due_at: datetime) -> None:
    """Give a round at least until ``due_at`` (a replacement officer gets the full time)."""
    t = dispatch_rounds
    conn.execute(
        update(t)
        .where(t.c.id == round_id, t.c.fired_at.is_(None), t.c.due_at < due_at)
        .values(due_at=due_at)
    )


def rounds_of(conn: Connection, incident_id: str) -> list[Any]:
    t = dispatch_rounds
    return list(conn.execute(select(t).where(t.c.incident_id == incident_id).order_by(t.c.round)))


def lock_incident(conn: Connection, incident_id: str) -> Any | None:
    stmt = select(incidents).where(incidents.c.id == incident_id).with_for_update()
    return conn.execute(stmt).first()


# --- alerts of an incident ---------------------------------------------------------------------


def alert(conn: Connection, alert_id: str) -> Any | None:
    stmt = select(alerts.c.id, alerts.c.kind, alerts.c.severity).where(alerts.c.id == alert_id)
    return conn.execute(stmt).first()


def small_evidence(conn: Connection, alert_id: str, max_bytes: int) -> Any | None:
    stmt = (
        select(evidence.c.data, evidence.c.width, evidence.c.height)
        .where(evidence.c.alert_id == alert_id, evidence.c.size_bytes <= max_bytes)
        .order_by(evidence.c.created_at)
        .limit(1)
    )
    return conn.execute(stmt).first()


# --- answers -----------------------------------------------------------------------------------


def insert_answer(conn: Connection, values: dict[str, Any]) -> bool:
    if conn.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(dispatch_answers)
    else:
        stmt = sqlite.insert(dispatch_answers)
    stmt = stmt.values(**values).on_conflict_do_nothing(index_elements=["id"])
    return conn.execute(stmt.returning(dispatch_answers.c.id)).first() is not None


def answer(conn: Connection, answer_id: str) -> Any | None:
    return conn.execute(select(dispatch_answers).where(dispatch_answers.c.id == answer_id)).first()


def claim_answer(conn: Connection, answer_id: str, outcome: str, reason: str | None) -> bool:
    """Decide an unprocessed answer; False when it is processed already (by another hub)."""
    t = dispatch_answers
    res = conn.execute(
        update(t)
        .where(t.c.id == answer_id, t.c.outcome.is_(None))
        .values(outcome=outcome, reason=reason)
    )
    return res.rowcount == 1


def set_outcome(conn: Connection, answer_id: str, outcome: str, reason: str | None) -> None:
    t = dispatch_answers
    conn.execute(update(t).where(t.c.id == answer_id).values(outcome=outcome, reason=reason))


def unprocessed_answers(conn: Connection, limit: int) -> list[str]:
    t = dispatch_answers
    stmt = select(t.c.id).where(t.c.outcome.is_(None)).order_by(t.c.received_at).limit(limit)
    return [str(i) for i in conn.execute(stmt).scalars()]


def answers_of(conn: Connection, dispatch_id: str) -> list[Any]:
    t = dispatch_answers
    return list(conn.execute(select(t).where(t.c.dispatch_id == dispatch_id).order_by(t.c.ts)))
