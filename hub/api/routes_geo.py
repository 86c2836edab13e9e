"""Zones and grid cells as GeoJSON (RFC 7946) in and out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table, delete, select, update
from sqlalchemy.exc import IntegrityError

from edge.validators import SEGMENT_PATTERN, utcnow
from hub.api.deps import Ctx, Me, PageDep, encode_cursor, guarded
from hub.api.models import WarningBody
from hub.auth import Permission
from hub.geojson import GeoJSONError, feature, validate_polygon
from hub.schema import grid_cells, zones

router = APIRouter(prefix="/api/v1", tags=["zones", "grid cells"])
GeoId = Annotated[str, Path(pattern=SEGMENT_PATTERN)]

ZONE_KINDS = ("inclusion", "exclusion", "intrusion", "perimeter", "restricted", "poi_area")
SQUARE: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [
        [[114.05, 22.54], [114.06, 22.54], [114.06, 22.55], [114.05, 22.55], [114.05, 22.54]]
    ],
}


class Geometry(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]


class ZoneProperties(BaseModel):
    model_config = ConfigDict(extra="allow")
    site: Annotated[str, Field(pattern=SEGMENT_PATTERN)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Literal["inclusion", "exclusion", "intrusion", "perimeter", "restricted", "poi_area"]


class ZoneFeature(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "Feature",
                    "id": "gate-a",
                    "geometry": SQUARE,
                    "properties": {"site": "demo", "name": "Gate A", "kind": "intrusion"},
                }
            ]
        },
    )
    type: Literal["Feature"]
    id: Annotated[str, Field(pattern=SEGMENT_PATTERN)]
    geometry: Geometry
    properties: ZoneProperties


class CellProperties(BaseModel):
    model_config = ConfigDict(extra="allow")
    site: Annotated[str, Field(pattern=SEGMENT_PATTERN)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    team: Annotated[str, Field(max_length=200)] = ""


class CellFeature(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "Feature",
                    "id": "cell-a1",
                    "geometry": SQUARE,
                    "properties": {"site": "demo", "name": "A1", "team": "Team North"},
                }
            ]
        },
    )
    type: Literal["Feature"]
    id: Annotated[str, Field(pattern=SEGMENT_PATTERN)]
    geometry: Geometry
    properties: CellProperties


class FeatureCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]]
    next_cursor: str | None = Field(default=None, description="foreign member: next page")


def _geometry(geometry: Geometry) -> dict[str, Any]:
    try:
        return validate_polygon(geometry.model_dump())
    except GeoJSONError as err:
        raise HTTPException(422, f"geometry: {err}") from err


def _zone_feature(row: Any) -> dict[str, Any]:
    return feature(
        row.id,
        row.geometry,
        {
            **row.properties,
            "site": row.site,
            "name": row.name,
            "kind": row.kind,
            "version": row.version,
        },
    )


def _cell_feature(row: Any) -> dict[str, Any]:
    return feature(
        row.id,
        row.geometry,
        {
            **row.properties,
            "site": row.site,
            "name": row.name,
            "team": row.team,
            "warning_level": row.warning_level,
            "warning_reason": row.warning_reason,
            "warning_set_by": row.warning_set_by,
            "warning_set_at": row.warning_set_at.isoformat() if row.warning_set_at else None,
        },
    )


def _collection(
    table: Table, to_feature: Any, ctx: Ctx, page: Any, site: str | None
) -> FeatureCollection:
    stmt = select(table).order_by(table.c.id).limit(page.limit)
    if site:
        stmt = stmt.where(table.c.site == site)
    if page.after:
        stmt = stmt.where(table.c.id > str(page.after[0]))
    with ctx.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    nxt = encode_cursor([rows[-1].id]) if len(rows) == page.limit else None
    return FeatureCollection(features=[to_feature(r) for r in rows], next_cursor=nxt)


SiteQuery = Annotated[str | None, Query(pattern=SEGMENT_PATTERN)]


@router.get("/zones", response_model=FeatureCollection, **guarded(Permission.ZONES_READ))
def list_zones(ctx: Ctx, page: PageDep, site: SiteQuery = None) -> FeatureCollection:
    return _collection(zones, _zone_feature, ctx, page, site)


@router.get("/zones/{zone_id}", **guarded(Permission.ZONES_READ))
def get_zone(zone_id: GeoId, ctx: Ctx) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        row = conn.execute(select(zones).where(zones.c.id == zone_id)).first()
    if row is None:
        raise HTTPException(404, f"no zone {zone_id!r}")
    return _zone_feature(row)


def _extra(props: BaseModel, known: set[str]) -> dict[str, Any]:
    return {k: v for k, v in props.model_dump().items() if k not in known}


@router.put("/zones/{zone_id}", **guarded(Permission.ZONES_WRITE))
def put_zone(
    zone_id: GeoId, body: Annotated[ZoneFeature, Body()], me: Me, ctx: Ctx
) -> dict[str, Any]:
    """Create or replace a zone; its version increases on every change."""
    if body.id != zone_id:
        raise HTTPException(422, f"feature id {body.id!r} differs from the URL's {zone_id!r}")
    geometry = _geometry(body.geometry)
    props = body.properties
    values = {
        "site": props.site,
        "name": props.name,
        "kind": props.kind,
        "geometry": geometry,
        "properties": _extra(props, {"site", "name", "kind", "version"}),
        "updated_at": utcnow(),
        "updated_by": me.username,
    }
    with ctx.audit.change(me.username, "zone.put", zone_id, {"kind": props.kind}) as conn:
        current = conn.execute(select(zones.c.version).where(zones.c.id == zone_id)).scalar()
        if current is None:
            conn.execute(zones.insert().values(id=zone_id, version=1, **values))
        else:
            conn.execute(
                update(zones).where(zones.c.id == zone_id).values(version=current + 1, **values)
            )
        row = conn.execute(select(zones).where(zones.c.id == zone_id)).one()
    return _zone_feature(row)


@router.delete("/zones/{zone_id}", status_code=204, **guarded(Permission.ZONES_WRITE))
def delete_zone(zone_id: GeoId, me: Me, ctx: Ctx) -> None:
    with ctx.audit.change(me.username, "zone.delete", zone_id) as conn:
        if conn.execute(delete(zones).where(zones.c.id == zone_id)).rowcount != 1:
            raise HTTPException(404, f"no zone {zone_id!r}")


@router.get("/grid-cells", response_model=FeatureCollection, **guarded(Permission.CELLS_READ))
def list_cells(ctx: Ctx, page: PageDep, site: SiteQuery = None) -> FeatureCollection:
    return _collection(grid_cells, _cell_feature, ctx, page, site)


@router.get("/grid-cells/{cell_id}", **guarded(Permission.CELLS_READ))
def get_cell(cell_id: GeoId, ctx: Ctx) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        row = conn.execute(select(grid_cells).where(grid_cells.c.id == cell_id)).first()
    if row is None:
        raise HTTPException(404, f"no grid cell {cell_id!r}")
    return _cell_feature(row)


@router.put("/grid-cells/{cell_id}", **guarded(Permission.CELLS_WRITE))
def put_cell(
    cell_id: GeoId, body: Annotated[CellFeature, Body()], me: Me, ctx: Ctx
) -> dict[str, Any]:
    if body.id != cell_id:
        raise HTTPException(422, f"feature id {body.id!r} differs from the URL's {cell_id!r}")
    geometry = _geometry(body.geometry)
    props = body.properties
    known = {
        "site",
        "name",
        "team",
        "warning_level",
        "warning_reason",
        "warning_set_by",
        "warning_set_at",
    }
    values = {
        "site": props.site,
        "name": props.name,
        "team": props.team,
        "geometry": geometry,
        "properties": _extra(props, known),
        "updated_at": utcnow(),
    }
    with ctx.audit.change(me.username, "cell.put", cell_id) as conn:
        try:
            exists = conn.execute(select(grid_cells.c.id).where(grid_cells.c.id == cell_id)).first()
            if exists is None:
                conn.execute(grid_cells.insert().values(id=cell_id, **values))
            else:
                conn.execute(update(grid_cells).where(grid_cells.c.id == cell_id).values(**values))
        except IntegrityError as err:
            raise HTTPException(409, str(err.orig)) from err
        row = conn.execute(select(grid_cells).where(grid_cells.c.id == cell_id)).one()
    return _cell_feature(row)


@router.delete("/grid-cells/{cell_id}", status_code=204, **guarded(Permission.CELLS_WRITE))
def delete_cell(cell_id: GeoId, me: Me, ctx: Ctx) -> None:
    with ctx.audit.change(me.username, "cell.delete", cell_id) as conn:
        if conn.execute(delete(grid_cells).where(grid_cells.c.id == cell_id)).rowcount != 1:
            raise HTTPException(404, f"no grid cell {cell_id!r}")


@router.post("/grid-cells/{cell_id}/warning", **guarded(Permission.CELLS_WARN))
def set_warning(cell_id: GeoId, body: WarningBody, me: Me, ctx: Ctx) -> dict[str, Any]:
    """Set (or clear, with level null) a cell's warning colour by hand, with a reason."""
    with ctx.audit.change(
        me.username, "cell.warning", cell_id, {"level": body.level, "reason": body.reason}
    ) as conn:
        res = conn.execute(
            update(grid_cells)
            .where(grid_cells.c.id == cell_id)
            .values(
                warning_level=body.level,
                warning_reason=body.reason,
                warning_set_by=me.username,
                warning_set_at=utcnow(),
            )
        )
        if res.rowcount != 1:
            raise HTTPException(404, f"no grid cell {cell_id!r}")
        row = conn.execute(select(grid_cells).where(grid_cells.c.id == cell_id)).one()
    return _cell_feature(row)
