"""SQL for incident statistics and exports (SQLAlchemy Core).

Everything here streams: the statistics read a few columns per incident through a
server-side cursor where the driver has one, and the exports read keyset pages of
``EXPORT_BATCH`` rows, each in its own short transaction, so neither 100,000 incidents nor a
slow client holds memory or a connection for long.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import Engine, func, literal, select, union_all

from hub.incidents.model import IncidentSource
from hub.schema import departments, grid_cells, incidents, users

Dimension = Literal["cell", "department", "category", "worker"]
DIMENSIONS: tuple[Dimension, ...] = ("cell", "department", "category", "worker")
EXPORT_BATCH = 1000
STREAM_ROWS = 5000


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    """Which incidents: ``since``/``until`` bound ``created_at`` (``until`` exclusive)."""

    site: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    states: Sequence[str] | None = None
    cell: str | None = None
    department: str | None = None
    category: str | None = None


class Fact(NamedTuple):
    """What the statistics need of one incident (under one grouping key). Times are as the
    driver returns them: aware on PostgreSQL, naive UTC on SQLite (the service compares
    like with like; converting 100,000 rows would double the cost of a report)."""

    key: str | None
    reported: int  # by=worker: 1 when the worker filed it as a field report
    assigned: int  # by=worker: 1 when the worker is its assignee
    state: str
    created_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    deadline_at: datetime | None


def aware(ts: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    if ts is None or ts.tzinfo is not None:
        return ts
    return ts.replace(tzinfo=UTC)


def _where(f: IncidentFilter) -> list[Any]:
    t = incidents.c
    clauses: list[Any] = []
    if f.site:
        clauses.append(t.site == f.site)
    if f.since:
        clauses.append(t.created_at >= f.since)
    if f.until:
        clauses.append(t.created_at < f.until)
    if f.states:
        clauses.append(t.state.in_(list(f.states)))
    if f.cell:
        clauses.append(t.cell_id == f.cell)
    if f.department:
        clauses.append(t.department_id == f.department)
    if f.category:
        clauses.append(t.category == f.category)
    return clauses


_FACT_COLUMNS = (
    incidents.c.state,
    incidents.c.created_at,
    incidents.c.resolved_at,
    incidents.c.closed_at,
    incidents.c.deadline_at,
)
_KEY_COLUMN = {
    "cell": incidents.c.cell_id,
    "department": incidents.c.department_id,
    "category": incidents.c.category,
}


def _worker_statement(f: IncidentFilter) -> Any:
    """One row per (worker, incident): the reporter of a field report and the assignee; the
    same person in both roles is one row with both flags."""
    t = incidents.c
    reported = select(
        t.id.label("incident"),
        t.opened_by.label("key"),
        literal(1).label("reported"),
        literal(0).label("assigned"),
        *_FACT_COLUMNS,
    ).where(t.source == IncidentSource.REPORT.value, *_where(f))
    assigned = select(
        t.id.label("incident"),
        t.assignee.label("key"),
        literal(0).label("reported"),
        literal(1).label("assigned"),
        *_FACT_COLUMNS,
    ).where(t.assignee.is_not(None), *_where(f))
    both = union_all(reported, assigned).subquery()
    c = both.c
    return select(
        c.key,
        func.max(c.reported).label("reported"),
        func.max(c.assigned).label("assigned"),
        c.state,
        c.created_at,
        c.resolved_at,
        c.closed_at,
        c.deadline_at,
    ).group_by(c.incident, c.key, c.state, c.created_at, c.resolved_at, c.closed_at, c.deadline_at)


def facts(engine: Engine, by: Dimension, f: IncidentFilter) -> Iterator[Fact]:
    """The facts for grouping ``by``, streamed."""
    if by == "worker":
        stmt = _worker_statement(f)
    else:
        stmt = select(_KEY_COLUMN[by].label("key"), literal(0), literal(0), *_FACT_COLUMNS).where(
            *_where(f)
        )
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=STREAM_ROWS).execute(stmt)
        for row in result:
            yield Fact._make(row)


def names(engine: Engine, by: Dimension, keys: Sequence[str]) -> dict[str, str]:
    """Display names of cells, departments and workers (categories come from the config)."""
    table, id_col, name_col = {
        "cell": (grid_cells, grid_cells.c.id, grid_cells.c.name),
        "department": (departments, departments.c.id, departments.c.name),
        "worker": (users, users.c.username, users.c.display_name),
    }.get(by, (None, None, None))
    if table is None or id_col is None or name_col is None or not keys:
        return {}
    found: dict[str, str] = {}
    wanted = list(keys)
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):  # bounded IN lists
            chunk = wanted[start : start + 500]
            for key, name in conn.execute(select(id_col, name_col).where(id_col.in_(chunk))):
                found[key] = name or key
    return found


def count(engine: Engine, f: IncidentFilter) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(incidents).where(*_where(f))).scalar_one()
        )


def export_rows(engine: Engine, f: IncidentFilter) -> Iterator[Any]:
    """Incidents matching ``f`` in id order (UUIDv7: creation order), in keyset pages."""
    after: str | None = None
    while True:
        stmt = select(incidents).where(*_where(f)).order_by(incidents.c.id).limit(EXPORT_BATCH)
        if after is not None:
            stmt = stmt.where(incidents.c.id > after)
        with engine.connect() as conn:
            batch = list(conn.execute(stmt).all())
        yield from batch
        if len(batch) < EXPORT_BATCH:
            return
        after = batch[-1].id
