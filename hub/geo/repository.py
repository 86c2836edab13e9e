"""SQL for zones, grid cells and points of interest (SQLAlchemy Core)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, exists, or_, select, update

from hub.schema import devices, grid_cells, incidents, pois, sites, zones


def page(
    conn: Connection, table: Table, *, limit: int, after: str | None, site: str | None
) -> list[Any]:
    stmt = select(table).order_by(table.c.id).limit(limit)
    if site:
        stmt = stmt.where(table.c.site == site)
    if after is not None:
        stmt = stmt.where(table.c.id > after)
    return list(conn.execute(stmt).all())


def site_known(conn: Connection, site: str) -> bool:
    """A site is known when it is registered or has a provisioned device."""
    stmt = select(or_(exists().where(sites.c.id == site), exists().where(devices.c.site == site)))
    return bool(conn.execute(stmt).scalar())


def get(conn: Connection, table: Table, object_id: str) -> Any | None:
    return conn.execute(select(table).where(table.c.id == object_id)).first()


def delete_one(conn: Connection, table: Table, object_id: str) -> bool:
    return conn.execute(delete(table).where(table.c.id == object_id)).rowcount == 1


def zone_version(conn: Connection, zone_id: str) -> int | None:
    value = conn.execute(select(zones.c.version).where(zones.c.id == zone_id)).scalar()
    return int(value) if value is not None else None


def insert_zone(conn: Connection, zone_id: str, version: int, values: dict[str, Any]) -> None:
    conn.execute(zones.insert().values(id=zone_id, version=version, **values))


def update_zone(conn: Connection, zone_id: str, version: int, values: dict[str, Any]) -> None:
    conn.execute(update(zones).where(zones.c.id == zone_id).values(version=version, **values))


def cell_exists(conn: Connection, cell_id: str) -> bool:
    found = conn.execute(select(grid_cells.c.id).where(grid_cells.c.id == cell_id)).first()
    return found is not None


def insert_cell(conn: Connection, cell_id: str, values: dict[str, Any]) -> None:
    conn.execute(grid_cells.insert().values(id=cell_id, **values))


def update_cell(conn: Connection, cell_id: str, values: dict[str, Any]) -> bool:
    res = conn.execute(update(grid_cells).where(grid_cells.c.id == cell_id).values(**values))
    return res.rowcount == 1


def replace_pois(
    conn: Connection, site: str, rows: list[dict[str, Any]], *, whole_site: bool
) -> None:
    if whole_site:
        conn.execute(delete(pois).where(pois.c.site == site))
    else:
        conn.execute(delete(pois).where(pois.c.id.in_([r["id"] for r in rows])))
    if rows:
        conn.execute(pois.insert(), rows)


def poi_page(
    conn: Connection,
    *,
    limit: int,
    after: str | None,
    site: str | None,
    category: str | None,
) -> list[Any]:
    stmt = select(pois).order_by(pois.c.id).limit(limit)
    if site:
        stmt = stmt.where(pois.c.site == site)
    if category:
        stmt = stmt.where(pois.c.category == category)
    if after is not None:
        stmt = stmt.where(pois.c.id > after)
    return list(conn.execute(stmt).all())


# -- grid cell import -----------------------------------------------------------------------


def cell_sites(conn: Connection, cell_ids: list[str]) -> dict[str, str]:
    """The site of each of these cells that exists (any site)."""
    found: dict[str, str] = {}
    for start in range(0, len(cell_ids), 500):  # SQLite's bound-parameter limit
        chunk = cell_ids[start : start + 500]
        stmt = select(grid_cells.c.id, grid_cells.c.site).where(grid_cells.c.id.in_(chunk))
        found.update({r.id: r.site for r in conn.execute(stmt)})
    return found


def cell_ids_of_site(conn: Connection, site: str) -> list[str]:
    stmt = select(grid_cells.c.id).where(grid_cells.c.site == site).order_by(grid_cells.c.id)
    return [str(v) for v in conn.execute(stmt).scalars()]


def open_incidents_in_cells(
    conn: Connection, cell_ids: list[str], open_states: list[str], limit: int = 10
) -> list[tuple[str, str]]:
    """A few (cell id, incident number) of open incidents located in these cells."""
    found: list[tuple[str, str]] = []
    for start in range(0, len(cell_ids), 500):
        chunk = cell_ids[start : start + 500]
        stmt = (
            select(incidents.c.cell_id, incidents.c.number)
            .where(incidents.c.cell_id.in_(chunk) & incidents.c.state.in_(open_states))
            .order_by(incidents.c.cell_id, incidents.c.number)
            .limit(limit - len(found))
        )
        found += [(str(r.cell_id), str(r.number)) for r in conn.execute(stmt)]
        if len(found) >= limit:
            break
    return found


def delete_cells(conn: Connection, cell_ids: list[str]) -> int:
    deleted = 0
    for start in range(0, len(cell_ids), 500):
        chunk = cell_ids[start : start + 500]
        deleted += conn.execute(delete(grid_cells).where(grid_cells.c.id.in_(chunk))).rowcount
    return deleted


def insert_cells(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(grid_cells.insert(), rows)


def update_cells(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """One executemany per set of columns: ``rows`` carry ``cell_id`` and the new values."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        columns = tuple(sorted(k for k in row if k != "cell_id"))
        by_columns.setdefault(columns, []).append(row)
    for columns, group in by_columns.items():
        stmt = (
            update(grid_cells)
            .where(grid_cells.c.id == bindparam("cell_id"))
            .values({c: bindparam(f"new_{c}") for c in columns})
        )
        conn.execute(
            stmt,
            [{"cell_id": r["cell_id"], **{f"new_{c}": r[c] for c in columns}} for r in group],
        )
