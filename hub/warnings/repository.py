"""SQL for cell warnings: what the rules read (open incidents, recent alerts, overrides), the
compare-and-set write of a cell's warning, and its history (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, select, update

from hub.incidents.model import OPEN_STATES
from hub.schema import alerts, cell_warning_history, cell_warning_overrides, grid_cells, incidents

CHUNK = 500  # ids per IN (...): far below every database's parameter limit

CELL_COLUMNS = (
    grid_cells.c.id,
    grid_cells.c.site,
    grid_cells.c.name,
    grid_cells.c.geometry,
    grid_cells.c.warning_level,
    grid_cells.c.warning_reason,
    grid_cells.c.warning_set_by,
    grid_cells.c.warning_set_at,
    grid_cells.c.warning_source,
    grid_cells.c.warning_rule,
    grid_cells.c.warning_explanation,
    grid_cells.c.warning_key,
    grid_cells.c.warning_episode,
    grid_cells.c.warning_version,
)
_OPEN = [s.value for s in OPEN_STATES]


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def cell(conn: Connection, cell_id: str, *, for_update: bool = False) -> Any | None:
    stmt = select(*CELL_COLUMNS).where(grid_cells.c.id == cell_id)
    if for_update:  # PostgreSQL: hold the row against a worker's write (SQLite: no-op)
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def cells(conn: Connection, ids: Sequence[str]) -> list[Any]:
    rows: list[Any] = []
    for part in _chunks(sorted(ids)):
        rows += conn.execute(select(*CELL_COLUMNS).where(grid_cells.c.id.in_(part))).all()
    return rows


def all_cell_ids(conn: Connection) -> list[str]:
    return list(conn.execute(select(grid_cells.c.id).order_by(grid_cells.c.id)).scalars())


def cells_coloured_by(conn: Connection, rules: Sequence[str]) -> list[str]:
    """Cells whose colour one of ``rules`` chose (the alert-rate rules: their windows decay
    with time alone, so the worker looks at them on every tick)."""
    if not rules:
        return []
    stmt = select(grid_cells.c.id).where(grid_cells.c.warning_rule.in_(list(rules)))
    return list(conn.execute(stmt).scalars())


def cell_sites(conn: Connection) -> list[str]:
    return list(conn.execute(select(grid_cells.c.site).distinct()).scalars())


def open_incidents(conn: Connection, cell_ids: Sequence[str]) -> list[Any]:
    rows: list[Any] = []
    cols = (
        incidents.c.id,
        incidents.c.number,
        incidents.c.level,
        incidents.c.category,
        incidents.c.created_at,
        incidents.c.deadline_at,
        incidents.c.cell_id,
    )
    for part in _chunks(sorted(cell_ids)):
        stmt = select(*cols).where(incidents.c.cell_id.in_(part), incidents.c.state.in_(_OPEN))
        rows += conn.execute(stmt).all()
    return rows


def changed_incident_cells(conn: Connection, since: datetime) -> set[str]:
    """Cells of incidents changed at or after ``since`` (ix_incidents_updated_at)."""
    stmt = select(incidents.c.cell_id).where(
        incidents.c.updated_at >= since, incidents.c.cell_id.is_not(None)
    )
    return set(conn.execute(stmt).scalars())


def cells_crossing_deadlines(conn: Connection, since: datetime, until: datetime) -> set[str]:
    """Cells of open incidents whose deadline passed in (since, until]: overdue by time alone
    (ix_incidents_state_deadline_at)."""
    stmt = select(incidents.c.cell_id).where(
        incidents.c.state.in_(_OPEN),
        incidents.c.deadline_at > since,
        incidents.c.deadline_at <= until,
        incidents.c.cell_id.is_not(None),
    )
    return set(conn.execute(stmt).scalars())


def cells_crossing_age(conn: Connection, born_after: datetime, born_by: datetime) -> set[str]:
    """Cells of open incidents created in (born_after, born_by]: those that reached a rule's
    minimum age since the last pass."""
    stmt = select(incidents.c.cell_id).where(
        incidents.c.state.in_(_OPEN),
        incidents.c.created_at > born_after,
        incidents.c.created_at <= born_by,
        incidents.c.cell_id.is_not(None),
    )
    return set(conn.execute(stmt).scalars())


def recent_alerts(conn: Connection, site: str, since: datetime) -> list[Any]:
    """Located alerts of a site stamped at or after ``since`` (ix_alerts_site_ts)."""
    stmt = select(alerts.c.kind, alerts.c.ts, alerts.c.lon, alerts.c.lat).where(
        alerts.c.site == site,
        alerts.c.ts >= since,
        alerts.c.lon.is_not(None),
        alerts.c.lat.is_not(None),
    )
    return list(conn.execute(stmt).all())


# -- overrides ---------------------------------------------------------------------------


def overrides(conn: Connection, cell_ids: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in _chunks(sorted(cell_ids)):
        stmt = select(cell_warning_overrides).where(cell_warning_overrides.c.cell_id.in_(part))
        out.update({r.cell_id: r for r in conn.execute(stmt)})
    return out


def expired_override_cells(conn: Connection, now: datetime) -> list[str]:
    stmt = select(cell_warning_overrides.c.cell_id).where(
        cell_warning_overrides.c.expires_at <= now
    )
    return list(conn.execute(stmt).scalars())


def put_override(conn: Connection, values: dict[str, Any]) -> None:
    delete_override(conn, values["cell_id"])
    conn.execute(cell_warning_overrides.insert().values(**values))


def delete_override(conn: Connection, cell_id: str) -> bool:
    stmt = delete(cell_warning_overrides).where(cell_warning_overrides.c.cell_id == cell_id)
    return conn.execute(stmt).rowcount == 1


def delete_expired_override(conn: Connection, cell_id: str, now: datetime) -> None:
    conn.execute(
        delete(cell_warning_overrides).where(
            cell_warning_overrides.c.cell_id == cell_id,
            cell_warning_overrides.c.expires_at <= now,
        )
    )


# -- the cell's warning ------------------------------------------------------------------


def set_warning(conn: Connection, cell_id: str, version: int, values: dict[str, Any]) -> bool:
    """Write the cell's warning only if nobody changed it since ``version`` was read: the
    loser of two hubs recomputing one cell writes nothing (and no history row)."""
    stmt = (
        update(grid_cells)
        .where(and_(grid_cells.c.id == cell_id, grid_cells.c.warning_version == version))
        .values(warning_version=version + 1, **values)
    )
    return conn.execute(stmt).rowcount == 1


def add_history(conn: Connection, values: dict[str, Any]) -> int:
    res = conn.execute(cell_warning_history.insert().values(**values))
    return int(res.inserted_primary_key[0])  # type: ignore[index]


def history_page(conn: Connection, cell_id: str, *, limit: int, before: int | None) -> list[Any]:
    """Newest first."""
    stmt = (
        select(cell_warning_history)
        .where(cell_warning_history.c.cell_id == cell_id)
        .order_by(cell_warning_history.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(cell_warning_history.c.id < before)
    return list(conn.execute(stmt).all())


def episode_history(conn: Connection, cell_id: str, episode: str) -> list[Any]:
    """The history rows of one warning episode, oldest first (CAP references)."""
    stmt = (
        select(cell_warning_history)
        .where(cell_warning_history.c.cell_id == cell_id, cell_warning_history.c.episode == episode)
        .order_by(cell_warning_history.c.id)
    )
    return list(conn.execute(stmt).all())


def last_history(conn: Connection, cell_id: str) -> Any | None:
    """The cell's latest history row that belongs to a warning episode."""
    stmt = (
        select(cell_warning_history)
        .where(
            cell_warning_history.c.cell_id == cell_id,
            cell_warning_history.c.episode.is_not(None),
        )
        .order_by(cell_warning_history.c.id.desc())
        .limit(1)
    )
    return conn.execute(stmt).first()


def warning_cells(conn: Connection, site: str | None) -> list[Any]:
    stmt = select(*CELL_COLUMNS).where(grid_cells.c.warning_level.is_not(None))
    if site is not None:
        stmt = stmt.where(grid_cells.c.site == site)
    return list(conn.execute(stmt.order_by(grid_cells.c.id)).all())
