"""Zones and grid cells as GeoJSON (RFC 7946) in and out; points of interest imported from
GeoJSON or CSV."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from edge.validators import SEGMENT_PATTERN
from hub.api.deps import Ctx, Me, Page, PageDep, encode_cursor, guarded
from hub.api.models import StorableModel, WarningBody
from hub.auth import Permission
from hub.clock import as_utc
from hub.context import HubContext
from hub.geo.geojson import feature
from hub.org.service import Responsibility

router = APIRouter(prefix="/api/v1", tags=["zones", "grid cells"])
poi_router = APIRouter(prefix="/api/v1/poi", tags=["points of interest"])
GeoId = Annotated[str, Path(pattern=SEGMENT_PATTERN)]
CATEGORY_RE = r"^[a-z0-9_]{1,64}$"

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


class ZoneFeature(StorableModel):
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


class CellFeature(StorableModel):
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


class ImportResult(BaseModel):
    imported: int
    replaced: bool


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


def _cell_feature(row: Any, org: Responsibility | None = None) -> dict[str, Any]:
    set_at = as_utc(row.warning_set_at).isoformat() if row.warning_set_at else None
    return feature(
        row.id,
        row.geometry,
        {
            **row.properties,
            "site": row.site,
            "name": row.name,
            "team": row.team,  # free text, for clients from before teams existed
            "responsible_team": org.team if org else None,
            "departments": org.departments if org else {},
            "warning_level": row.warning_level,
            "warning_reason": row.warning_reason,
            "warning_set_by": row.warning_set_by,
            "warning_set_at": set_at,
            "warning_source": row.warning_source,
            "warning_rule": row.warning_rule,
        },
    )


def _after(page: Page) -> str | None:
    return page.after_text()


SiteQuery = Annotated[str | None, Query(pattern=SEGMENT_PATTERN)]


def _collection(rows: list[Any], to_feature: Any, page: Page) -> FeatureCollection:
    nxt = encode_cursor([rows[-1].id]) if len(rows) == page.limit else None
    return FeatureCollection(features=[to_feature(r) for r in rows], next_cursor=nxt)


def _cell_features(ctx: HubContext, rows: list[Any]) -> list[dict[str, Any]]:
    """Cells with their team and departments (two queries for the whole page)."""
    org = ctx.org.responsibilities({r.id: r.team_id for r in rows})
    return [_cell_feature(r, org[r.id]) for r in rows]


@router.get("/zones", response_model=FeatureCollection, **guarded(Permission.ZONES_READ))
def list_zones(ctx: Ctx, page: PageDep, site: SiteQuery = None) -> FeatureCollection:
    rows = ctx.geo.zones(limit=page.limit, after=_after(page), site=site)
    return _collection(rows, _zone_feature, page)


@router.get("/zones/{zone_id}", **guarded(Permission.ZONES_READ))
def get_zone(zone_id: GeoId, ctx: Ctx) -> dict[str, Any]:
    return _zone_feature(ctx.geo.zone(zone_id))


@router.put("/zones/{zone_id}", **guarded(Permission.ZONES_WRITE))
def put_zone(
    zone_id: GeoId, body: Annotated[ZoneFeature, Body()], me: Me, ctx: Ctx
) -> dict[str, Any]:
    """Create or replace a zone; its version increases on every change."""
    row = ctx.geo.put_zone(
        me.username, zone_id, body.id, body.geometry.model_dump(), body.properties.model_dump()
    )
    return _zone_feature(row)


@router.delete("/zones/{zone_id}", status_code=204, **guarded(Permission.ZONES_WRITE))
def delete_zone(zone_id: GeoId, me: Me, ctx: Ctx) -> None:
    ctx.geo.delete_zone(me.username, zone_id)


@router.get("/grid-cells", response_model=FeatureCollection, **guarded(Permission.CELLS_READ))
def list_cells(ctx: Ctx, page: PageDep, site: SiteQuery = None) -> FeatureCollection:
    rows = ctx.geo.cells(limit=page.limit, after=_after(page), site=site)
    nxt = encode_cursor([rows[-1].id]) if len(rows) == page.limit else None
    return FeatureCollection(features=_cell_features(ctx, rows), next_cursor=nxt)


@router.get("/grid-cells/{cell_id}", **guarded(Permission.CELLS_READ))
def get_cell(cell_id: GeoId, ctx: Ctx) -> dict[str, Any]:
    return _cell_features(ctx, [ctx.geo.cell(cell_id)])[0]


@router.put("/grid-cells/{cell_id}", **guarded(Permission.CELLS_WRITE))
def put_cell(
    cell_id: GeoId, body: Annotated[CellFeature, Body()], me: Me, ctx: Ctx
) -> dict[str, Any]:
    row = ctx.geo.put_cell(
        me.username, cell_id, body.id, body.geometry.model_dump(), body.properties.model_dump()
    )
    return _cell_features(ctx, [row])[0]


@router.delete("/grid-cells/{cell_id}", status_code=204, **guarded(Permission.CELLS_WRITE))
def delete_cell(cell_id: GeoId, me: Me, ctx: Ctx) -> None:
    ctx.geo.delete_cell(me.username, cell_id)


class CellImportResult(BaseModel):
    imported: int = Field(description="features in the file")
    created: int
    updated: int
    deleted: int = Field(description="cells of the site not in the file (replace only)")
    replaced: bool


_CELL_IMPORT_ROUTE = guarded(
    Permission.CELLS_WRITE,
    {
        409: {"description": "replace would delete a cell holding an open incident"},
        413: {"description": "over the size or feature limit"},
        415: {"description": "not GeoJSON"},
        422: {"description": "lists every problem, feature by feature"},
    },
)
_CELL_IMPORT_ROUTE["openapi_extra"]["requestBody"] = {
    "required": True,
    "content": {"application/geo+json": {"schema": {"type": "object"}}},
}


@router.post("/grid-cells/import", response_model=CellImportResult, **_CELL_IMPORT_ROUTE)
async def import_cells(
    request: Request,
    me: Me,
    ctx: Ctx,
    site: Annotated[str, Query(pattern=SEGMENT_PATTERN)],
    replace: Annotated[
        bool, Query(description="also delete the site's cells the file does not name")
    ] = False,
) -> CellImportResult:
    """Import grid cells from a GeoJSON FeatureCollection (``application/geo+json`` or
    ``application/json``): each Feature has a string id, a Polygon or MultiPolygon, and
    properties ``name`` (required), ``team`` (a team id) and ``departments`` ({line:
    department id}). All or nothing: a 422 lists every problem found."""
    raw = await request.body()
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # Parsing, shapely validation and the audited write are blocking: off the event loop.
    summary = await run_in_threadpool(
        ctx.geo.import_cells, me.username, site, raw, media_type, replace=replace
    )
    return CellImportResult(
        imported=summary.imported,
        created=summary.created,
        updated=summary.updated,
        deleted=summary.deleted,
        replaced=summary.replaced,
    )


@router.post("/grid-cells/{cell_id}/warning", **guarded(Permission.CELLS_WARN))
def set_warning(cell_id: GeoId, body: WarningBody, me: Me, ctx: Ctx) -> dict[str, Any]:
    """Override a cell's warning colour by hand, with a reason, until ``expires_at`` (default
    ``warnings.override_default_h`` from now); level null ends the override. The same as
    ``PUT``/``DELETE /grid-cells/{cell_id}/warning-override``, kept for older clients."""
    if body.level is None:
        ctx.warnings.end_override(me.username, cell_id, missing_ok=True)
    else:
        expires_at = body.expires_at or ctx.clock.now() + timedelta(
            hours=ctx.config.warnings.override_default_h
        )
        ctx.warnings.set_override(me.username, cell_id, body.level, body.reason, expires_at)
    return _cell_features(ctx, [ctx.geo.cell(cell_id)])[0]  # with its team and departments


# --- points of interest ---------------------------------------------------------------------

_IMPORT_ROUTE = guarded(
    Permission.ZONES_WRITE,
    {
        415: {"description": "neither CSV nor GeoJSON"},
        422: {"description": "says what to fix"},
    },
)
_IMPORT_ROUTE["openapi_extra"]["requestBody"] = {
    "required": True,
    "content": {
        "application/geo+json": {"schema": {"type": "object"}},
        "text/csv": {"schema": {"type": "string"}},
    },
}


@poi_router.post("/import", response_model=ImportResult, **_IMPORT_ROUTE)
async def import_pois(
    request: Request,
    me: Me,
    ctx: Ctx,
    site: Annotated[str, Query(pattern=SEGMENT_PATTERN)],
    replace: Annotated[bool, Query(description="delete the site's other points first")] = False,
) -> ImportResult:
    """Import points of interest from GeoJSON (``application/geo+json`` or
    ``application/json``) or CSV (``text/csv`` with columns id,name,category,lon,lat)."""
    raw = await request.body()
    media_type = request.headers.get("content-type", "").split(";")[0].strip()
    # Parsing and the audited write are blocking work: off the event loop, so the live
    # stream keeps pumping while a large file is imported.
    summary = await run_in_threadpool(
        ctx.geo.import_pois, me.username, site, raw, media_type, replace=replace
    )
    return ImportResult(imported=summary.imported, replaced=summary.replaced)


@poi_router.get("", **guarded(Permission.ZONES_READ))
def list_pois(
    ctx: Ctx,
    page: PageDep,
    site: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None,
    category: Annotated[str | None, Query(pattern=CATEGORY_RE)] = None,
) -> dict[str, Any]:
    """Points of interest as a GeoJSON FeatureCollection (``next_cursor`` for more)."""
    rows = ctx.geo.pois(limit=page.limit, after=_after(page), site=site, category=category)
    features = [
        feature(
            r.id,
            {"type": "Point", "coordinates": [r.lon, r.lat]},
            {**r.properties, "site": r.site, "name": r.name, "category": r.category},
        )
        for r in rows
    ]
    nxt = encode_cursor([rows[-1].id]) if len(rows) == page.limit else None
    return {"type": "FeatureCollection", "features": features, "next_cursor": nxt}
