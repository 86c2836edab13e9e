"""Which grid cell holds a point: prepared polygons per site, rebuilt when the site's cells
change (their count or latest ``updated_at``), so locating an incident or a report is cheap."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry import Point, shape
from sqlalchemy import Connection, Engine, func, select

from hub.schema import grid_cells


@dataclass
class _SiteCells:
    stamp: tuple[int, datetime | None]
    ids: list[str]
    tree: shapely.STRtree
    polygons: list[Any]


class CellLocator:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sites: dict[str, _SiteCells] = {}
        self._lock = threading.Lock()

    def cell_at(
        self, site: str, lon: float, lat: float, conn: Connection | None = None
    ) -> str | None:
        """The id of the site's cell containing (lon, lat); the first by id when cells
        overlap; None outside every cell."""
        if conn is None:
            with self.engine.connect() as own:
                return self.cell_at(site, lon, lat, own)
        return self.cells_at(site, [(lon, lat)], conn)[0]

    def cells_at(
        self, site: str, points: list[tuple[float, float]], conn: Connection
    ) -> list[str | None]:
        """:meth:`cell_at` for many points of one site, reading the site's cells once."""
        cells = self._cells(conn, site)
        out: list[str | None] = []
        for lon, lat in points:
            point = Point(lon, lat)
            hits = sorted(
                cells.ids[i] for i in cells.tree.query(point) if cells.polygons[i].covers(point)
            )
            out.append(hits[0] if hits else None)
        return out

    def _cells(self, conn: Connection, site: str) -> _SiteCells:
        stamp_row = conn.execute(
            select(func.count(), func.max(grid_cells.c.updated_at)).where(grid_cells.c.site == site)
        ).one()
        stamp = (int(stamp_row[0]), stamp_row[1])
        with self._lock:
            cached = self._sites.get(site)
        if cached is not None and cached.stamp == stamp:
            return cached
        rows = conn.execute(
            select(grid_cells.c.id, grid_cells.c.geometry)
            .where(grid_cells.c.site == site)
            .order_by(grid_cells.c.id)
        ).all()
        polygons = [shape(r.geometry) for r in rows]
        for polygon in polygons:
            shapely.prepare(polygon)
        built = _SiteCells(stamp, [r.id for r in rows], shapely.STRtree(polygons), polygons)
        with self._lock:
            self._sites[site] = built
        return built
