"""What the command dashboard shows and where its map comes from (``ui:`` in the hub config).

The map must work with no internet: the default base layer is ``none`` (a plain background with
the site's own grid cells, zones and an optional outline file). ``local_tiles`` serves an XYZ tile
tree or an MBTiles file from disk through the hub (behind the login, like every route); ``url``
lets the browser load an online (or intranet) tile server. Coordinates stay WGS84 everywhere;
if the operator says the tile source uses a shifted datum (GCJ-02, common for maps of China),
the browser shifts overlays at display time only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from edge.config import StrictModel

BaseLayer = Literal["none", "local_tiles", "url"]
TileDatum = Literal["wgs84", "gcj02"]
Language = Literal["en", "zh-CN"]
TileExt = Literal["png", "jpg", "jpeg", "webp"]


class DashboardConfig(StrictModel):
    base_layer: BaseLayer = Field(
        default="none",
        description="none: plain background + the site's GeoJSON outlines; local_tiles: an "
        "XYZ tile tree on the hub's disk; url: a tile server the browser can reach",
    )
    tile_url: Annotated[str, Field(min_length=8, max_length=500)] | None = Field(
        default=None,
        description="template with {z}, {x}, {y} (and optionally {s}); only for base_layer: url",
        examples=["https://tile.openstreetmap.org/{z}/{x}/{y}.png"],
    )
    tile_subdomains: Annotated[str, Field(pattern=r"^[a-z0-9]{1,16}$")] = "abc"
    tiles_dir: Path | None = Field(
        default=None, description="<tiles_dir>/<z>/<x>/<y>.<ext>; only for base_layer: local_tiles"
    )
    mbtiles_file: Path | None = Field(
        default=None,
        description="an MBTiles 1.3 file of raster tiles (png, jpg or webp), served by the hub; "
        "only for base_layer: local_tiles, instead of tiles_dir",
    )
    tile_ext: TileExt = "png"
    attribution: Annotated[str, Field(max_length=300)] = ""
    tile_datum: TileDatum = Field(
        default="wgs84",
        description="the datum the tile source is drawn in; gcj02 shifts overlays at display",
    )
    min_zoom: Annotated[int, Field(ge=0, le=22)] = 3
    max_zoom: Annotated[int, Field(ge=0, le=22)] = 20
    center_lon: Annotated[float, Field(ge=-180, le=180)] = 114.0570
    center_lat: Annotated[float, Field(ge=-90, le=90)] = 22.5430
    zoom: Annotated[int, Field(ge=0, le=22)] = 16
    outline_file: Path | None = Field(
        default=None,
        description="a GeoJSON FeatureCollection drawn under everything (district border, "
        "streets, buildings): the offline base map when base_layer is none",
    )
    trail_points: Annotated[int, Field(ge=0, le=200)] = 20
    trail_max_age_s: Annotated[float, Field(gt=0, le=3600)] = 120.0
    position_stale_after_s: Annotated[float, Field(gt=0, le=86400)] = 300.0
    track_fade_after_s: Annotated[float, Field(gt=0, le=86400)] = Field(
        default=30.0,
        description="an anonymous track (camera or LiDAR) not seen for this long starts to fade",
    )
    track_remove_after_s: Annotated[float, Field(gt=0, le=86400)] = Field(
        default=120.0,
        description="an anonymous track not seen for this long is removed from the map",
    )
    device_degraded_after_s: Annotated[float, Field(gt=0, le=86400)] = Field(
        default=90.0,
        description="an online device with no heartbeat for this long shows as degraded",
    )
    device_outbox_degraded: Annotated[int, Field(ge=1)] = Field(
        default=50, description="an online device with at least this many unsent alerts is degraded"
    )
    device_cpu_temp_degraded_c: Annotated[float, Field(ge=30, le=150)] = 85.0
    alert_feed_max: Annotated[int, Field(ge=10, le=1000)] = 200
    language: Language = "en"

    @model_validator(mode="after")
    def _base_layer_needs_its_source(self) -> Self:
        if self.base_layer == "url":
            if self.tile_url is None:
                raise ValueError("ui.base_layer 'url' needs ui.tile_url (a {z}/{x}/{y} template)")
            missing = [p for p in ("{z}", "{x}", "{y}") if p not in self.tile_url]
            if missing:
                raise ValueError(f"ui.tile_url lacks {', '.join(missing)}: it is a tile template")
            if not self.tile_url.startswith(("https://", "http://", "/")):
                raise ValueError("ui.tile_url must start with https://, http:// or / (same host)")
        if self.base_layer == "local_tiles" and (self.tiles_dir is None) == (
            self.mbtiles_file is None
        ):
            raise ValueError(
                "ui.base_layer 'local_tiles' needs exactly one of ui.tiles_dir (a z/x/y tile "
                "tree) and ui.mbtiles_file (an MBTiles file)"
            )
        if self.track_fade_after_s >= self.track_remove_after_s:
            raise ValueError("ui.track_fade_after_s must be less than ui.track_remove_after_s")
        if self.min_zoom > self.max_zoom:
            raise ValueError("ui.min_zoom must not exceed ui.max_zoom")
        if not self.min_zoom <= self.zoom <= self.max_zoom:
            raise ValueError("ui.zoom must lie between ui.min_zoom and ui.max_zoom")
        return self
