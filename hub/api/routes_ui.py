"""What the command dashboard needs beyond the data API: its map settings, local tiles, the
offline outline, and devices placed on the map with a health-derived status."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import FileResponse
from sqlalchemy import and_, func, select

from edge.validators import SEGMENT_PATTERN, utcnow
from hub.api.deps import Ctx, PageDep, encode_cursor, guarded
from hub.auth import Permission
from hub.dashboard_config import DashboardConfig
from hub.schema import alerts, device_state, devices, health, latest_positions

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/ui", tags=["dashboard"])
MAX_TILE_ZOOM = 22
DeviceStatus = Literal["online", "offline", "degraded", "unknown"]
LocationSource = Literal["registry", "positions", "alert"]


@router.get("/config", **guarded(Permission.SELF))
def ui_config(ctx: Ctx) -> dict[str, Any]:
    """Map and display settings for the dashboard (no file paths, no secrets)."""
    ui = ctx.config.ui
    base: dict[str, Any] = {"kind": ui.base_layer, "attribution": ui.attribution}
    if ui.base_layer == "url":
        base["url"] = ui.tile_url
        base["subdomains"] = ui.tile_subdomains
    elif ui.base_layer == "local_tiles":
        base["url"] = f"/api/v1/ui/tiles/{{z}}/{{x}}/{{y}}.{ui.tile_ext}"
    return {
        "site": ctx.config.site,
        "base_layer": base,
        "tile_datum": ui.tile_datum,
        "min_zoom": ui.min_zoom,
        "max_zoom": ui.max_zoom,
        "center": [ui.center_lon, ui.center_lat],
        "zoom": ui.zoom,
        "has_outline": ui.outline_file is not None,
        "trail_points": ui.trail_points,
        "trail_max_age_s": ui.trail_max_age_s,
        "position_stale_after_s": ui.position_stale_after_s,
        "alert_feed_max": ui.alert_feed_max,
        "language": ui.language,
    }


@router.get(
    "/tiles/{z}/{x}/{y}.{ext}",
    response_class=FileResponse,
    **guarded(Permission.SELF, {404: {"description": "no such tile"}}),
)
def local_tile(
    ctx: Ctx,
    z: Annotated[int, Path(ge=0, le=MAX_TILE_ZOOM)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
    ext: Annotated[str, Path(pattern=r"^(png|jpg|jpeg|webp)$")],
) -> FileResponse:
    """One tile of the configured local tile tree (``ui.tiles_dir/z/x/y.ext``)."""
    ui = ctx.config.ui
    if ui.base_layer != "local_tiles" or ui.tiles_dir is None or ext != ui.tile_ext:
        raise HTTPException(404, "this hub serves no local tiles (ui.base_layer)")
    if x >= 2**z or y >= 2**z:
        raise HTTPException(404, f"tile {z}/{x}/{y} is outside the zoom level's grid")
    # z, x, y are validated integers, so the path cannot leave tiles_dir.
    path = ui.tiles_dir / str(z) / str(x) / f"{y}.{ext}"
    if not path.is_file():
        raise HTTPException(404, f"no tile {z}/{x}/{y}")
    return FileResponse(path, headers={"Cache-Control": "private, max-age=86400"})


@router.get("/outline", **guarded(Permission.SELF))
def outline(ctx: Ctx) -> dict[str, Any]:
    """The operator's offline outline (GeoJSON FeatureCollection), or an empty collection."""
    path = ctx.config.ui.outline_file
    if path is None:
        return {"type": "FeatureCollection", "features": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("ui.outline_file %s unreadable: %s", path, err)
        raise HTTPException(503, f"ui.outline_file cannot be read: {err}") from err
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise HTTPException(503, "ui.outline_file is not a GeoJSON FeatureCollection")
    return data


# --- devices on the map ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HealthSummary:
    ts: datetime
    outbox_depth: int
    cpu_temp_c: float | None


StatusReason = dict[str, str | int | float]


def device_status(
    state: str | None,
    last_health: HealthSummary | None,
    now: datetime,
    ui: DashboardConfig,
) -> tuple[DeviceStatus, list[StatusReason]]:
    """Online, offline, degraded (online but something is wrong) or unknown, with the reasons
    as codes plus values: the dashboard words them in the user's language."""
    if state is None:
        return "unknown", [{"code": "never_connected"}]
    if state in ("offline", "stopped"):
        return "offline", [{"code": state}]
    reasons: list[StatusReason] = []
    if last_health is None:
        reasons.append({"code": "no_heartbeat"})
    else:
        age_s = (now - last_health.ts).total_seconds()
        if age_s > ui.device_degraded_after_s:
            reasons.append({"code": "stale_heartbeat", "age_s": int(age_s)})
        if last_health.outbox_depth >= ui.device_outbox_degraded:
            reasons.append({"code": "outbox_backlog", "n": last_health.outbox_depth})
        if last_health.cpu_temp_c is not None and (
            last_health.cpu_temp_c >= ui.device_cpu_temp_degraded_c
        ):
            reasons.append({"code": "cpu_hot", "c": round(last_health.cpu_temp_c)})
    return ("degraded" if reasons else "online"), reasons


def _aware(ts: datetime) -> datetime:
    """SQLite hands back naive datetimes; the store only ever writes UTC."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _latest_per_device(conn: Any, ids: list[str]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    if not ids:
        return rows
    newest_pos = (
        select(latest_positions.c.device, func.max(latest_positions.c.ts).label("ts"))
        .where(latest_positions.c.device.in_(ids))
        .group_by(latest_positions.c.device)
        .subquery()
    )
    for r in conn.execute(
        select(latest_positions.c.device, latest_positions.c.lon, latest_positions.c.lat).join(
            newest_pos,
            and_(
                newest_pos.c.device == latest_positions.c.device,
                newest_pos.c.ts == latest_positions.c.ts,
            ),
        )
    ):
        rows.setdefault(r.device, {}).setdefault("positions", (r.lon, r.lat))
    newest_alert = (
        select(func.max(alerts.c.id).label("id"))
        .where(alerts.c.device.in_(ids), alerts.c.lon.is_not(None))
        .group_by(alerts.c.device)
        .subquery()
    )
    for r in conn.execute(
        select(alerts.c.device, alerts.c.lon, alerts.c.lat).join(
            newest_alert, newest_alert.c.id == alerts.c.id
        )
    ):
        rows.setdefault(r.device, {})["alert"] = (r.lon, r.lat)
    newest_health = (
        select(health.c.device, func.max(health.c.ts).label("ts"))
        .where(health.c.device.in_(ids))
        .group_by(health.c.device)
        .subquery()
    )
    for r in conn.execute(
        select(health.c.device, health.c.ts, health.c.payload).join(
            newest_health,
            and_(newest_health.c.device == health.c.device, newest_health.c.ts == health.c.ts),
        )
    ):
        payload = r.payload or {}
        temp = payload.get("cpu_temp_c")
        rows.setdefault(r.device, {})["health"] = HealthSummary(
            ts=_aware(r.ts),
            outbox_depth=int(payload.get("outbox_depth") or 0),
            cpu_temp_c=float(temp) if isinstance(temp, int | float) else None,
        )
    return rows


@router.get("/devices", **guarded(Permission.DEVICES_READ))
def devices_on_map(
    ctx: Ctx,
    page: PageDep,
    site: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None,
) -> dict[str, Any]:
    """Active devices as GeoJSON: placed where the installer recorded them (``location`` at
    provisioning or ``PATCH /devices/{id}``), else where their entities were last seen, else
    at their last located alert; status is online, offline, degraded (online with a stale
    heartbeat, a backed-up outbox or a hot CPU) or unknown.
    Devices with no known place have ``geometry: null``."""
    stmt = (
        select(devices, device_state.c.state, device_state.c.received_at)
        .outerjoin(
            device_state,
            and_(device_state.c.device == devices.c.id, device_state.c.site == devices.c.site),
        )
        .where(devices.c.status == "active")
        .order_by(devices.c.id)
        .limit(page.limit)
    )
    if site:
        stmt = stmt.where(devices.c.site == site)
    if page.after:
        stmt = stmt.where(devices.c.id > str(page.after[0]))
    now = utcnow()
    with ctx.engine.connect() as conn:
        rows = conn.execute(stmt).all()
        extra = _latest_per_device(conn, [r.id for r in rows])
    features = []
    for r in rows:
        info = extra.get(r.id, {})
        if r.lon is not None and r.lat is not None:
            info = {**info, "registry": (r.lon, r.lat)}
        source: LocationSource | None = None
        point: tuple[float, float] | None = None
        for key in ("registry", "positions", "alert"):
            if key in info:
                source, point = key, info[key]
                break
        last: HealthSummary | None = info.get("health")
        status, reasons = device_status(r.state, last, now, ctx.config.ui)
        last_seen = max(
            (_aware(t) for t in (r.received_at, last.ts if last else None) if t is not None),
            default=None,
        )
        features.append(
            {
                "type": "Feature",
                "id": r.id,
                "geometry": {"type": "Point", "coordinates": list(point)} if point else None,
                "properties": {
                    "site": r.site,
                    "kind": r.kind,
                    "name": r.name,
                    "status": status,
                    "status_reasons": reasons,
                    "last_seen": last_seen.isoformat() if last_seen else None,
                    "location_source": source,
                },
            }
        )
    nxt = encode_cursor([rows[-1].id]) if len(rows) == page.limit else None
    return {"type": "FeatureCollection", "features": features, "next_cursor": nxt}
