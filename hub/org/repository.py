"""SQL for departments, teams and cell responsibilities (SQLAlchemy Core)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from hub.schema import cell_departments, departments


def department(conn: Connection, department_id: str) -> Any | None:
    return conn.execute(select(departments).where(departments.c.id == department_id)).first()


def department_for_cell(conn: Connection, cell_id: str, line: str) -> str | None:
    """The department a cell names for a line of work, if any."""
    stmt = select(cell_departments.c.department_id).where(
        (cell_departments.c.cell_id == cell_id) & (cell_departments.c.line == line)
    )
    value = conn.execute(stmt).scalar()
    return str(value) if value is not None else None
