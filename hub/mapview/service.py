"""The dashboard map's rules: which settings it may see, which tile files it may read, and
where and in what state each device is shown."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Engine

from edge.validators import utcnow
from hub.config import HubConfig
from hub.dashboard_config import DashboardConfig
from hub.errors import Unavailable
from hub.flood import FloodGuard
from hub.mapview import repository
from hub.mapview.camera_zones import camera_zone_features
from hub.mapview.tiles import Tile, TileNotFound, directory_tile, mbtiles_tile

__all__ = ["MapService", "OutlineUnavailable", "TileNotFound", "device_status"]

log = logging.getLogger(__name__)
# Cameras whose zones one answer carries (64 zones each at most): a district's cameras fit.
CAMERA_ZONES_MAX_CAMERAS = 2000

DeviceStatus = Literal["online", "offline", "degraded", "unknown"]
LocationSource = Literal["registry", "positions", "alert"]
StatusReason = dict[str, str | int | float]


class OutlineUnavailable(Unavailable):
    pass


@dataclass(frozen=True, slots=True)
class HealthSummary:
    ts: datetime
    outbox_depth: int
    cpu_temp_c: float | None
    # Figures the dashboard's per-kind health shows; None: the device does not report it.
    fps: float | None = None
    inference_ms: float | None = None
    queue_depth: int | None = None

    def figures(self) -> dict[str, float | int | None]:
        return {
            "fps": self.fps,
            "inference_ms": self.inference_ms,
            "queue_depth": self.queue_depth,
            "outbox_depth": self.outbox_depth,
            "cpu_temp_c": self.cpu_temp_c,
        }


def device_status(
    state: str | None,
    last_health: HealthSummary | None,
    now: datetime,
    ui: DashboardConfig,
    flood_dropped: int = 0,
) -> tuple[DeviceStatus, list[StatusReason]]:
    """Online, offline, degraded (online but something is wrong) or unknown, with the reasons
    as codes plus values: the dashboard words them in the user's language. ``flood_dropped``
    is how many of the device's messages the hub's flood limiter dropped in its current
    flooding episode (0: not flooding)."""
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
    if flood_dropped > 0:
        reasons.append({"code": "flooding", "n": flood_dropped})
    return ("degraded" if reasons else "online"), reasons


def _number(value: object) -> float | None:
    # bool is an int subclass; a stored payload is JSON, so nothing else can appear here.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _aware(ts: datetime) -> datetime:
    """SQLite hands back naive datetimes; the store only ever writes UTC."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


class MapService:
    def __init__(
        self, engine: Engine, config: HubConfig, flood: FloodGuard | None = None
    ) -> None:
        self.engine = engine
        self.config = config
        self.flood = flood  # ingest's limiter: a flooding device shows as degraded

    def settings(self) -> dict[str, Any]:
        """Map and display settings for the dashboard (no file paths, no secrets)."""
        ui = self.config.ui
        base: dict[str, Any] = {"kind": ui.base_layer, "attribution": ui.attribution}
        if ui.base_layer == "url":
            base["url"] = ui.tile_url
            base["subdomains"] = ui.tile_subdomains
        elif ui.base_layer == "local_tiles":
            base["url"] = f"/api/v1/ui/tiles/{{z}}/{{x}}/{{y}}.{ui.tile_ext}"
        return {
            "site": self.config.site,
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
            "track_fade_after_s": ui.track_fade_after_s,
            "track_remove_after_s": ui.track_remove_after_s,
            "alert_feed_max": ui.alert_feed_max,
            "language": ui.language,
            # The site's zone: the dashboard shows every time in it, whatever the browser's.
            "timezone": self.config.timezone,
        }

    def tile(self, z: int, x: int, y: int, ext: str) -> Tile:
        """One tile of the site's own base map (an MBTiles file or a z/x/y tree)."""
        ui = self.config.ui
        if ui.base_layer != "local_tiles" or ext != ui.tile_ext:
            raise TileNotFound("this hub serves no local tiles (ui.base_layer)")
        if x >= 2**z or y >= 2**z:
            raise TileNotFound(f"tile {z}/{x}/{y} is outside the zoom level's grid")
        if ui.mbtiles_file is not None:
            return mbtiles_tile(ui.mbtiles_file, z, x, y)
        if ui.tiles_dir is None:  # the config's validator requires one of the two
            raise TileNotFound("this hub serves no local tiles (ui.tiles_dir)")
        return directory_tile(ui.tiles_dir, z, x, y, ext)

    def outline(self) -> dict[str, Any]:
        path = self.config.ui.outline_file
        if path is None:
            return {"type": "FeatureCollection", "features": []}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            log.warning("ui.outline_file %s unreadable: %s", path, err)
            raise OutlineUnavailable(f"ui.outline_file cannot be read: {err}") from err
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            raise OutlineUnavailable("ui.outline_file is not a GeoJSON FeatureCollection")
        return data

    def camera_zones(self, *, site: str | None) -> dict[str, Any]:
        """Every camera's pushed zones and lines in lon/lat, and how many cameras with a push
        could not be drawn (no zones or no homography in their newest push)."""
        with self.engine.connect() as conn:
            rows = repository.newest_camera_pushes(conn, site, CAMERA_ZONES_MAX_CAMERAS)
        features: list[dict[str, Any]] = []
        undrawn = 0
        for r in rows:
            found = camera_zone_features(r.device, r.site, r.config or {})
            features.extend(found)
            undrawn += 0 if found else 1
        return {"type": "FeatureCollection", "features": features, "cameras_not_drawn": undrawn}

    def devices(
        self, *, limit: int, after: str | None, site: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """GeoJSON features of active devices and the last id (for the next page)."""
        now = utcnow()
        flooding = (
            {(f.site, f.device): sum(f.dropped.values()) for f in self.flood.flooding()}
            if self.flood is not None
            else {}
        )
        with self.engine.connect() as conn:
            rows = repository.active_devices(conn, limit=limit, after=after, site=site)
            extra = self._latest_per_device(conn, [r.id for r in rows])
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
            status, reasons = device_status(
                r.state, last, now, self.config.ui, flooding.get((r.site, r.id), 0)
            )
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
                        # None when no heartbeat came: "not reported", not zero.
                        "health": last.figures() if last else None,
                    },
                }
            )
        return features, rows[-1].id if len(rows) == limit else None

    @staticmethod
    def _latest_per_device(conn: Any, ids: list[str]) -> dict[str, Any]:
        rows: dict[str, Any] = {}
        if not ids:
            return rows
        for r in repository.newest_positions(conn, ids):
            rows.setdefault(r.device, {}).setdefault("positions", (r.lon, r.lat))
        for r in repository.newest_located_alerts(conn, ids):
            rows.setdefault(r.device, {})["alert"] = (r.lon, r.lat)
        for r in repository.newest_health(conn, ids):
            payload = r.payload or {}
            queue = payload.get("queue_depth")
            rows.setdefault(r.device, {})["health"] = HealthSummary(
                ts=_aware(r.ts),
                outbox_depth=int(payload.get("outbox_depth") or 0),
                cpu_temp_c=_number(payload.get("cpu_temp_c")),
                fps=_number(payload.get("fps")),
                inference_ms=_number(payload.get("inference_ms")),
                queue_depth=int(queue) if isinstance(queue, int) else None,
            )
        return rows
