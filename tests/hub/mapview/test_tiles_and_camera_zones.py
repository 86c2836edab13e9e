"""The site's own tiles (MBTiles or a z/x/y tree) and camera zones on the ground: pure parts,
no hub needed. Hostile or broken inputs give a clear refusal and touch nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge.projection import LocalProjection
from hub.dashboard_config import DashboardConfig
from hub.mapview.camera_zones import (
    HomographyUnusableError,
    PixelToMap,
    camera_zone_features,
)
from hub.mapview.tiles import TileNotFound, directory_tile, mbtiles_tile, sniff_media_type

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def test_local_tiles_need_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"exactly one of ui\.tiles_dir"):
        DashboardConfig(base_layer="local_tiles")
    with pytest.raises(ValidationError, match=r"exactly one of ui\.tiles_dir"):
        DashboardConfig(
            base_layer="local_tiles", tiles_dir=tmp_path, mbtiles_file=tmp_path / "a.mbtiles"
        )
    DashboardConfig(base_layer="local_tiles", mbtiles_file=tmp_path / "a.mbtiles")
    with pytest.raises(ValidationError, match="track_fade_after_s must be less"):
        DashboardConfig(track_fade_after_s=60, track_remove_after_s=60)


def test_a_missing_mbtiles_file_is_a_404_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.mbtiles"
    with pytest.raises(TileNotFound, match="cannot be opened"):
        mbtiles_tile(path, 1, 0, 0)
    assert not path.exists()


def test_a_file_that_is_not_mbtiles_is_a_404(tmp_path: Path) -> None:
    path = tmp_path / "notes.mbtiles"
    path.write_bytes(b"just some text, not a database")
    with pytest.raises(TileNotFound, match="cannot be read"):
        mbtiles_tile(path, 1, 0, 0)
    empty = tmp_path / "empty.mbtiles"
    sqlite3.connect(empty).close()  # a database without a tiles table
    with pytest.raises(TileNotFound, match="cannot be read"):
        mbtiles_tile(empty, 1, 0, 0)


def test_mbtiles_rows_are_tms_and_only_images_are_served(tmp_path: Path) -> None:
    path = tmp_path / "t.mbtiles"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE tiles (zoom_level, tile_column, tile_row, tile_data blob)")
    conn.execute("INSERT INTO tiles VALUES (2, 1, 3, ?)", (PNG,))  # TMS row 3 = XYZ y 0
    conn.execute("INSERT INTO tiles VALUES (2, 2, 3, ?)", (b"<svg onload=alert(1)>",))
    conn.commit()
    conn.close()
    tile = mbtiles_tile(path, 2, 1, 0)
    assert tile.media_type == "image/png" and tile.data == PNG
    with pytest.raises(TileNotFound):
        mbtiles_tile(path, 2, 1, 3)  # the unflipped row holds nothing
    with pytest.raises(TileNotFound, match="not a raster image"):
        mbtiles_tile(path, 2, 2, 0)


def test_sniffing_knows_png_jpeg_webp_and_nothing_else() -> None:
    assert sniff_media_type(PNG) == "image/png"
    assert sniff_media_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_media_type(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert sniff_media_type(b"\x1f\x8b\x08gzip") is None
    assert sniff_media_type(b"") is None


def test_a_directory_where_a_tile_should_be_is_a_404(tmp_path: Path) -> None:
    (tmp_path / "3" / "1" / "2.png").mkdir(parents=True)
    with pytest.raises(TileNotFound, match="cannot be read"):
        directory_tile(tmp_path, 3, 1, 2, "png")


ORIGIN = LocalProjection(114.057, 22.543)


Pair = tuple[tuple[float, float], tuple[float, float]]


def _points(pairs: Sequence[Pair]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for px, (east, north) in pairs:
        lon, lat = ORIGIN.offset(east, north)
        out.append({"px": list(px), "lon": lon, "lat": lat})
    return out


def test_a_perspective_homography_maps_its_ground_points_back() -> None:
    # A camera looking down a street: the far side of the image spans more ground.
    pairs = [((0, 0), (-40, 80)), ((640, 0), (40, 80)), ((640, 480), (5, 5)), ((0, 480), (-5, 5))]
    to_map = PixelToMap(_points(pairs))
    for px, (east, north) in pairs:
        lon, lat = to_map.lonlat(*px)
        x, y = ORIGIN.to_site(lon, lat)
        assert abs(x - east) < 0.01 and abs(y - north) < 0.01


@pytest.mark.parametrize(
    "points",
    [
        [],
        [{"px": [0, 0], "lon": 114.0, "lat": 22.0}] * 4,  # four times the same point
        [{"px": [i, i], "lon": 114.0 + i * 1e-4, "lat": 22.0} for i in range(4)],  # a line
        [{"px": "nonsense"}] * 4,
        [{"px": [0, 0], "lon": "x", "lat": 22.0}] * 4,
    ],
)
def test_unusable_ground_points_are_refused(points: list[dict[str, object]]) -> None:
    with pytest.raises(HomographyUnusableError):
        PixelToMap(points)


def test_garbage_zones_are_left_out_and_good_ones_kept() -> None:
    pairs = [((0, 0), (0, 10)), ((10, 0), (10, 10)), ((10, 10), (10, 0)), ((0, 10), (0, 0))]
    config = {
        "homography": {"points": _points(pairs)},
        "zones": [
            "not a zone",
            {"id": "x", "type": "teleport"},
            {"id": "no-b", "type": "line", "a": [0, 5]},
            {"id": "bad-poly", "type": "intrusion", "polygon": [[0, 0], "x"]},
            {"id": "ok", "type": "line", "a": [0, 5], "b": [10, 5], "alert_direction": "any"},
        ],
    }
    features = camera_zone_features("cam-1", "site-a", config)
    assert [f["properties"]["zone"] for f in features] == ["ok"]
    assert features[0]["properties"]["crossing"] is None
    assert camera_zone_features("cam-1", "site-a", {"zones": config["zones"]}) == []
    assert camera_zone_features("cam-1", "site-a", {"homography": "x", "zones": []}) == []
