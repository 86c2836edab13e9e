"""SQL for incident statistics and exports (SQLAlchemy Core).

Everything here streams or aggregates in the database: the counts are one GROUP BY, the
durations (needed one by one for exact percentiles) come as seconds computed by the
database through a server-side cursor where the driver has one, and the exports read keyset pages of
``EXPORT_BATCH`` rows, each in its own short transaction, so neither 100,000 incidents nor a
slow client holds memory or a connection for long.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import Engine, and_, case, func, literal, select, union_all

from hub.incidents.model import DONE_STATES, OPEN_STATES, IncidentSource
from hub.schema import departments, grid_cells, incidents, users

Dimension = Literal["cell", "department", "category", "worker"]
DIMENSIONS: tuple[Dimension, ...] = ("cell", "department", "category", "worker")
EXPORT_BATCH = 1000
OPEN_VALUES = [s.value for s in OPEN_STATES]
DONE_VALUES = [s.value for s in DONE_STATES]
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


class CountRow(NamedTuple):
    """Incidents of one key in one state."""

    key: str | None
    state: str
    incidents: int
    overdue: int  # open and past deadline_at at ``now``
    reported: int  # by=worker: filed by the worker as a field report
    assigned: int  # by=worker: assigned to the worker


class DurationRow(NamedTuple):
    """One resolved or closed incident's times from creation, in seconds."""

    key: str | None
    state: str
    resolve_s: float | None
    close_s: float | None


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


def _source(by: Dimension, f: IncidentFilter) -> Any:
    if by == "worker":
        return _worker_statement(f).subquery()
    return (
        select(
            _KEY_COLUMN[by].label("key"),
            literal(0).label("reported"),
            literal(0).label("assigned"),
            *_FACT_COLUMNS,
        )
        .where(*_where(f))
        .subquery()
    )


def _seconds(engine: Engine, end: Any, start: Any) -> Any:
    """``end - start`` in seconds, computed by the database (parsing 100,000 timestamps in
    Python costs more than the whole query)."""
    if engine.dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def counts(engine: Engine, by: Dimension, f: IncidentFilter, now: datetime) -> list[CountRow]:
    src = _source(by, f)
    c = src.c
    late = case(
        (and_(c.state.in_(OPEN_VALUES), c.deadline_at.is_not(None), c.deadline_at < now), 1),
        else_=0,
    )
    stmt = select(
        c.key,
        c.state,
        func.count(),
        func.coalesce(func.sum(late), 0),
        func.coalesce(func.sum(c.reported), 0),
        func.coalesce(func.sum(c.assigned), 0),
    ).group_by(c.key, c.state)
    with engine.connect() as conn:
        return [
            CountRow(k, s, int(n), int(o), int(r), int(a))
            for k, s, n, o, r, a in conn.execute(stmt)
        ]


def durations(engine: Engine, by: Dimension, f: IncidentFilter) -> Iterator[DurationRow]:
    """Times from creation of the resolved and closed incidents, streamed."""
    src = _source(by, f)
    c = src.c
    stmt = select(
        c.key,
        c.state,
        _seconds(engine, c.resolved_at, c.created_at),
        _seconds(engine, c.closed_at, c.created_at),
    ).where(c.state.in_(DONE_VALUES))
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=STREAM_ROWS).execute(stmt)
        for key, state, resolve_s, close_s in result:
            yield DurationRow(
                key,
                state,
                None if resolve_s is None else round(float(resolve_s), 3),
                None if close_s is None else round(float(close_s), 3),
            )


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
