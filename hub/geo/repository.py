"""SQL for zones, grid cells and points of interest (SQLAlchemy Core)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, delete, exists, or_, select, update

from hub.schema import devices, grid_cells, pois, sites, zones


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
