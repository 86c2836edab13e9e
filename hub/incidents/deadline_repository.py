"""SQL for deadlines and incident timers (SQLAlchemy Core).

Every write that races with a sweeping hub is conditional (``fired_at IS NULL``): the row lock
a conditional UPDATE takes, and its rowcount, decide who won; nothing is read-then-written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from hub.auth import Role
from hub.schema import (
    incident_deadlines,
    incident_events,
    incident_timers,
    incidents,
    notifications,
    users,
)

T = incident_timers.c


def deadline_record(conn: Connection, incident_id: str) -> Any | None:
    stmt = select(incident_deadlines).where(incident_deadlines.c.incident_id == incident_id)
    return conn.execute(stmt).first()


def put_deadline_record(
    conn: Connection,
    incident_id: str,
    *,
    started_at: datetime,
    deadline_at: datetime,
    running: bool,
) -> None:
    values = {"started_at": started_at, "deadline_at": deadline_at, "running": running}
    res = conn.execute(
        update(incident_deadlines)
        .where(incident_deadlines.c.incident_id == incident_id)
        .values(**values)
    )
    if res.rowcount == 0:
        conn.execute(incident_deadlines.insert().values(incident_id=incident_id, **values))


def stop_deadline_record(conn: Connection, incident_id: str) -> None:
    conn.execute(
        update(incident_deadlines)
        .where(incident_deadlines.c.incident_id == incident_id)
        .values(running=False)
    )


def set_incident_deadline(
    conn: Connection, incident_id: str, deadline_at: datetime | None, *, reset_stage: bool
) -> None:
    values: dict[str, Any] = {"deadline_at": deadline_at}
    if reset_stage:
        values["escalation_stage"] = 0
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))


def raise_stage(conn: Connection, incident_id: str, stage: int) -> None:
    """Escalation only goes up while an incident stays open (a late reminder cannot lower it)."""
    conn.execute(
        update(incidents)
        .where((incidents.c.id == incident_id) & (incidents.c.escalation_stage < stage))
        .values(escalation_stage=stage)
    )


def lock_incident(conn: Connection, incident_id: str) -> Any | None:
    """The incident's row, locked for this transaction (PostgreSQL; SQLite's writer lock
    already serialises). Taken before the timer row, in the order an incident change takes
    them (incident, then its timers via on_change, then the audit log), so a sweep and an
    incident change never deadlock."""
    stmt = select(incidents).where(incidents.c.id == incident_id).with_for_update()
    return conn.execute(stmt).first()


def lock_incidents(conn: Connection, incident_ids: Iterable[str]) -> dict[str, Any]:
    """Several incidents' rows, locked in id order (the order two sweepers, and a change that
    locks several incidents, both take), so overlapping pages wait rather than deadlock. The
    ORDER BY sits below PostgreSQL's row locking, so the locks are taken in that order."""
    ids = sorted(set(incident_ids))
    if not ids:
        return {}
    stmt = select(incidents).where(incidents.c.id.in_(ids)).order_by(incidents.c.id)
    return {str(row.id): row for row in conn.execute(stmt.with_for_update()).all()}


def raise_stages(conn: Connection, by_stage: Mapping[int, Sequence[str]]) -> None:
    """:func:`raise_stage` for many incidents, one statement per stage, lowest first."""
    for stage in sorted(by_stage):
        ids = sorted(set(by_stage[stage]))
        if ids:
            conn.execute(
                update(incidents)
                .where(incidents.c.id.in_(ids) & (incidents.c.escalation_stage < stage))
                .values(escalation_stage=stage)
            )


def add_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Timeline events in one executemany (the columns of ``incidents.repository.add_event``)."""
    if rows:
        conn.execute(incident_events.insert(), list(rows))


def add_notifications(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Inbox messages in one executemany (the columns of ``notifications.repository.notify``)."""
    if rows:
        conn.execute(notifications.insert(), list(rows))


def timers_of(conn: Connection, incident_id: str) -> dict[str, Any]:
    rows = conn.execute(select(incident_timers).where(T.incident_id == incident_id)).all()
    return {row.kind: row for row in rows}


def add_timer(
    conn: Connection, incident_id: str, kind: str, due_at: datetime, *, cancelled: bool
) -> None:
    conn.execute(
        incident_timers.insert().values(
            incident_id=incident_id, kind=kind, due_at=due_at, cancelled=cancelled
        )
    )


def rearm_timer(conn: Connection, timer_id: int, due_at: datetime) -> None:
    """A reopened incident's timers run again, fired or not."""
    conn.execute(
        update(incident_timers)
        .where(T.id == timer_id)
        .values(due_at=due_at, fired_at=None, fired_by=None, cancelled=False)
    )


def move_timer(conn: Connection, timer_id: int, due_at: datetime) -> None:
    """Reschedule a timer that has not fired (one that fired meanwhile stays fired)."""
    conn.execute(
        update(incident_timers)
        .where((T.id == timer_id) & T.fired_at.is_(None))
        .values(due_at=due_at, cancelled=False)
    )


def cancel_timer(conn: Connection, timer_id: int) -> bool:
    res = conn.execute(
        update(incident_timers)
        .where((T.id == timer_id) & T.fired_at.is_(None) & T.cancelled.is_(False))
        .values(cancelled=True)
    )
    return res.rowcount == 1


def cancel_timers(conn: Connection, incident_id: str) -> int:
    res = conn.execute(
        update(incident_timers)
        .where((T.incident_id == incident_id) & T.fired_at.is_(None) & T.cancelled.is_(False))
        .values(cancelled=True)
    )
    return res.rowcount


def due_timers(
    conn: Connection, now: datetime, *, after: tuple[Any, int] | None, limit: int
) -> Sequence[Any]:
    """Unfired, live timers due by ``now``, earliest first, in keyset pages after ``after``
    (the previous page's last ``(due_at, id)``), so a timer that keeps failing cannot hold
    back the ones behind it. The order follows ``ix_incident_timers_fired_at_due_at``: the
    scan touches the due rows only, however many timers wait in the future."""
    where = T.fired_at.is_(None) & T.cancelled.is_(False) & (T.due_at <= now)
    if after is not None:
        due_at, timer_id = after
        where &= (T.due_at > due_at) | ((T.due_at == due_at) & (T.id > timer_id))
    stmt = (
        select(T.id, T.incident_id, T.kind, T.due_at)
        .where(where)
        .order_by(T.due_at, T.id)
        .limit(limit)
    )
    return conn.execute(stmt).all()


def claim(conn: Connection, timer_id: int, *, now: datetime, hub_id: str) -> bool:
    """Mark one due timer fired by this hub; False when another hub fired it first or it was
    cancelled or moved later meanwhile. Call it in the transaction of the timer's effect."""
    res = conn.execute(
        update(incident_timers)
        .where(
            (T.id == timer_id) & T.fired_at.is_(None) & T.cancelled.is_(False) & (T.due_at <= now)
        )
        .values(fired_at=now, fired_by=hub_id)
    )
    return res.rowcount == 1


def claim_many(
    conn: Connection, timer_ids: Iterable[int], *, now: datetime, hub_id: str
) -> set[int]:
    """:func:`claim` for a page of timers in one conditional UPDATE: the ids this hub won.
    Without UPDATE ... RETURNING (old SQLite), one claim per timer, whose rowcounts decide."""
    ids = sorted(set(timer_ids))
    if not ids:
        return set()
    if not conn.dialect.update_returning:
        return {i for i in ids if claim(conn, i, now=now, hub_id=hub_id)}
    stmt = (
        update(incident_timers)
        .where(T.id.in_(ids) & T.fired_at.is_(None) & T.cancelled.is_(False) & (T.due_at <= now))
        .values(fired_at=now, fired_by=hub_id)
        .returning(T.id)
    )
    return {int(i) for i in conn.execute(stmt).scalars()}


def pending_count(conn: Connection, now: datetime) -> int:
    stmt = select(func.count()).where(
        T.fired_at.is_(None) & T.cancelled.is_(False) & (T.due_at <= now)
    )
    return int(conn.execute(stmt).scalar_one())


def active_users(conn: Connection, usernames: Iterable[str]) -> list[str]:
    names = sorted(set(usernames))
    if not names:
        return []
    stmt = select(users.c.username).where(users.c.username.in_(names) & users.c.active.is_(True))
    return sorted(str(u) for u in conn.execute(stmt).scalars())


def active_commanders(conn: Connection) -> list[str]:
    stmt = (
        select(users.c.username)
        .where((users.c.role == Role.COMMANDER.value) & users.c.active.is_(True))
        .order_by(users.c.username)
    )
    return [str(u) for u in conn.execute(stmt).scalars()]
