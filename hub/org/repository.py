"""SQL for departments, teams and cell responsibilities (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from hub.incidents.model import OPEN_STATES
from hub.schema import (
    cell_departments,
    departments,
    grid_cells,
    incidents,
    team_members,
    teams,
    users,
)

# -- departments ----------------------------------------------------------------------------


def department(conn: Connection, department_id: str) -> Any | None:
    return conn.execute(select(departments).where(departments.c.id == department_id)).first()


def departments_by_id(conn: Connection, ids: Iterable[str]) -> dict[str, Any]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = conn.execute(select(departments).where(departments.c.id.in_(wanted))).all()
    return {r.id: r for r in rows}


def department_page(
    conn: Connection, *, limit: int, after: str | None, site: str | None, line: str | None
) -> list[Any]:
    stmt = select(departments).order_by(departments.c.id).limit(limit)
    if site is not None:
        # A department without a site serves every site of the hub.
        stmt = stmt.where((departments.c.site == site) | departments.c.site.is_(None))
    if line is not None:
        stmt = stmt.where(departments.c.line == line)
    if after is not None:
        stmt = stmt.where(departments.c.id > after)
    return list(conn.execute(stmt).all())


def insert_department(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(departments).values(**values))


def update_department(conn: Connection, department_id: str, values: dict[str, Any]) -> bool:
    res = conn.execute(
        update(departments).where(departments.c.id == department_id).values(**values)
    )
    return res.rowcount == 1


def delete_department(conn: Connection, department_id: str) -> bool:
    res = conn.execute(delete(departments).where(departments.c.id == department_id))
    return res.rowcount == 1


def cells_naming_department(
    conn: Connection, department_id: str, *, other_site: str | None = None, limit: int = 5
) -> list[str]:
    """A few cells naming the department (only those not of ``other_site`` when given)."""
    stmt = (
        select(cell_departments.c.cell_id)
        .where(cell_departments.c.department_id == department_id)
        .order_by(cell_departments.c.cell_id)
        .limit(limit)
    )
    if other_site is not None:
        stmt = stmt.join(grid_cells, grid_cells.c.id == cell_departments.c.cell_id).where(
            grid_cells.c.site != other_site
        )
    return [str(v) for v in conn.execute(stmt).scalars()]


def open_incidents_of_department(conn: Connection, department_id: str, limit: int = 5) -> list[str]:
    stmt = (
        select(incidents.c.number)
        .where(
            (incidents.c.department_id == department_id)
            & incidents.c.state.in_([s.value for s in OPEN_STATES])
        )
        .order_by(incidents.c.number)
        .limit(limit)
    )
    return [str(v) for v in conn.execute(stmt).scalars()]


def department_for_cell(conn: Connection, cell_id: str, line: str) -> str | None:
    """The department a cell names for a line of work, if any."""
    stmt = select(cell_departments.c.department_id).where(
        (cell_departments.c.cell_id == cell_id) & (cell_departments.c.line == line)
    )
    value = conn.execute(stmt).scalar()
    return str(value) if value is not None else None


# -- teams ----------------------------------------------------------------------------------


def team(conn: Connection, team_id: str) -> Any | None:
    return conn.execute(select(teams).where(teams.c.id == team_id)).first()


def teams_by_id(conn: Connection, ids: Iterable[str]) -> dict[str, Any]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = conn.execute(select(teams).where(teams.c.id.in_(wanted))).all()
    return {r.id: r for r in rows}


def team_page(conn: Connection, *, limit: int, after: str | None, site: str | None) -> list[Any]:
    stmt = select(teams).order_by(teams.c.id).limit(limit)
    if site is not None:
        stmt = stmt.where(teams.c.site == site)
    if after is not None:
        stmt = stmt.where(teams.c.id > after)
    return list(conn.execute(stmt).all())


def members_of(conn: Connection, team_ids: Iterable[str]) -> dict[str, list[str]]:
    wanted = sorted(set(team_ids))
    found: dict[str, list[str]] = {t: [] for t in wanted}
    if not wanted:
        return found
    stmt = (
        select(team_members.c.team_id, team_members.c.username)
        .where(team_members.c.team_id.in_(wanted))
        .order_by(team_members.c.team_id, team_members.c.username)
    )
    for row in conn.execute(stmt):
        found[row.team_id].append(row.username)
    return found


def insert_team(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(teams).values(**values))


def update_team(conn: Connection, team_id: str, values: dict[str, Any]) -> bool:
    return conn.execute(update(teams).where(teams.c.id == team_id).values(**values)).rowcount == 1


def replace_members(conn: Connection, team_id: str, usernames: list[str]) -> None:
    conn.execute(delete(team_members).where(team_members.c.team_id == team_id))
    if usernames:
        conn.execute(insert(team_members), [{"team_id": team_id, "username": u} for u in usernames])


def delete_team(conn: Connection, team_id: str) -> bool:
    conn.execute(delete(team_members).where(team_members.c.team_id == team_id))
    return conn.execute(delete(teams).where(teams.c.id == team_id)).rowcount == 1


def cells_of_team(conn: Connection, team_id: str, limit: int = 5) -> list[str]:
    stmt = (
        select(grid_cells.c.id)
        .where(grid_cells.c.team_id == team_id)
        .order_by(grid_cells.c.id)
        .limit(limit)
    )
    return [str(v) for v in conn.execute(stmt).scalars()]


def users_by_name(conn: Connection, usernames: Iterable[str]) -> dict[str, Any]:
    wanted = sorted(set(usernames))
    if not wanted:
        return {}
    stmt = select(users.c.username, users.c.role, users.c.active).where(
        users.c.username.in_(wanted)
    )
    return {r.username: r for r in conn.execute(stmt).all()}


# -- cell responsibility --------------------------------------------------------------------


def cell(conn: Connection, cell_id: str) -> Any | None:
    stmt = select(grid_cells.c.id, grid_cells.c.site, grid_cells.c.team_id).where(
        grid_cells.c.id == cell_id
    )
    return conn.execute(stmt).first()


def set_cell_team(conn: Connection, cell_id: str, values: dict[str, Any]) -> bool:
    res = conn.execute(update(grid_cells).where(grid_cells.c.id == cell_id).values(**values))
    return res.rowcount == 1


def replace_cell_departments(conn: Connection, cell_id: str, by_line: Mapping[str, str]) -> None:
    conn.execute(delete(cell_departments).where(cell_departments.c.cell_id == cell_id))
    if by_line:
        conn.execute(
            insert(cell_departments),
            [{"cell_id": cell_id, "line": ln, "department_id": d} for ln, d in by_line.items()],
        )


def replace_many_cell_departments(
    conn: Connection, by_cell: Mapping[str, Mapping[str, str]]
) -> None:
    """One statement per kind for an import of many cells, not one per cell."""
    if not by_cell:
        return
    ids = sorted(by_cell)
    for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
        chunk = ids[start : start + 500]
        conn.execute(delete(cell_departments).where(cell_departments.c.cell_id.in_(chunk)))
    rows = [
        {"cell_id": c, "line": ln, "department_id": d}
        for c, lines in by_cell.items()
        for ln, d in lines.items()
    ]
    if rows:
        conn.execute(insert(cell_departments), rows)


def departments_of_cells(conn: Connection, cell_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per cell, per line: the department's id and name."""
    wanted = sorted(set(cell_ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        stmt = (
            select(
                cell_departments.c.cell_id,
                cell_departments.c.line,
                departments.c.id,
                departments.c.name,
            )
            .join(departments, departments.c.id == cell_departments.c.department_id)
            .where(cell_departments.c.cell_id.in_(chunk))
        )
        for row in conn.execute(stmt):
            found.setdefault(row.cell_id, {})[row.line] = {"id": row.id, "name": row.name}
    return found
