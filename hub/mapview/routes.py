"""``/api/v1/ui``: map settings, local tiles, the offline outline, devices on the map."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from edge.validators import SEGMENT_PATTERN
from hub.api.deps import Ctx, PageDep, encode_cursor, guarded
from hub.auth import Permission
from hub.mapview.wall import WallFigures

router = APIRouter(prefix="/api/v1/ui", tags=["dashboard"])
MAX_TILE_ZOOM = 22


@router.get("/config", **guarded(Permission.SELF))
def ui_config(ctx: Ctx) -> dict[str, Any]:
    """Map and display settings for the dashboard (no file paths, no secrets)."""
    return ctx.mapview.settings()


@router.get(
    "/tiles/{z}/{x}/{y}.{ext}",
    response_class=Response,
    **guarded(
        Permission.SELF,
        {200: {"content": {"image/png": {}}}, 404: {"description": "no such tile"}},
    ),
)
def local_tile(
    ctx: Ctx,
    z: Annotated[int, Path(ge=0, le=MAX_TILE_ZOOM)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
    ext: Annotated[str, Path(pattern=r"^(png|jpg|jpeg|webp)$")],
) -> Response:
    """One tile of the site's own base map: ``ui.mbtiles_file`` or ``ui.tiles_dir/z/x/y.ext``
    (XYZ numbering; MBTiles' TMS rows are flipped by the hub)."""
    tile = ctx.mapview.tile(z, x, y, ext)
    return Response(
        tile.data,
        media_type=tile.media_type,
        headers={"Cache-Control": "private, max-age=86400"},
    )


@router.get("/outline", **guarded(Permission.SELF))
def outline(ctx: Ctx) -> dict[str, Any]:
    """The operator's offline outline (GeoJSON FeatureCollection), or an empty collection."""
    return ctx.mapview.outline()


@router.get("/wall", **guarded(Permission.INCIDENT_STATS_READ))
def wall(
    ctx: Ctx,
    site: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None,
    days: Annotated[int, Query(ge=1, le=90, description="days of the trend")] = 14,
    overdue_max: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """The wall display's own figures: open incidents by level, the overdue incidents (the
    total and the longest overdue first), incidents opened and closed per day of the site's
    calendar (``HubConfig.timezone``) and alerts per hour over the last 24 hours (hours start
    in UTC). Cells, departments and times to close come from ``/incident-stats``."""
    figures = WallFigures(ctx.engine, ctx.config)
    return figures.figures(ctx.clock.now(), site=site, days=days, overdue_max=overdue_max)


@router.get("/camera-zones", **guarded(Permission.ZONES_READ))
def camera_zones(
    ctx: Ctx, site: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None
) -> dict[str, Any]:
    """The zones and lines each camera watches, mapped from image pixels to lon/lat with the
    homography of its newest config push (GeoJSON: Polygon for intrusion and loitering zones,
    LineString from ``a`` to ``b`` for lines). ``cameras_not_drawn`` counts cameras whose
    newest push lacks zones or a usable homography (their file's zones are unknown here)."""
    return ctx.mapview.camera_zones(site=site)


@router.get("/devices", **guarded(Permission.DEVICES_READ))
def devices_on_map(
    ctx: Ctx,
    page: PageDep,
    site: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None,
) -> dict[str, Any]:
    """Active devices as GeoJSON: placed where the installer recorded them (``location`` at
    provisioning or ``PATCH /devices/{id}``), else where their entities were last seen, else
    at their last located alert; status is online, offline, degraded (online with a stale
    heartbeat, a backed-up outbox, a hot CPU or a telemetry flood) or unknown.
    Devices with no known place have ``geometry: null``."""
    after = page.after_text()
    features, last = ctx.mapview.devices(limit=page.limit, after=after, site=site)
    nxt = encode_cursor([last]) if last is not None else None
    return {"type": "FeatureCollection", "features": features, "next_cursor": nxt}
