"""GeoJSON (RFC 7946) validation for zones and grid cells: polygons must be closed, simple and
in WGS84 lon/lat range. Errors say exactly what to fix."""

from __future__ import annotations

from typing import Any

from shapely.geometry import shape
from shapely.validation import explain_validity

from hub.errors import Invalid

MAX_VERTICES = 20_000


class GeoJSONError(Invalid):
    """A geometry that cannot be stored; the message names the problem and where it is."""


def _check_ring(ring: Any, where: str) -> int:
    if not isinstance(ring, list) or len(ring) < 4:
        raise GeoJSONError(f"{where}: a linear ring needs at least 4 positions (first = last)")
    for i, pos in enumerate(ring):
        if (
            not isinstance(pos, list | tuple)
            or len(pos) not in (2, 3)
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in pos)
        ):
            raise GeoJSONError(f"{where}[{i}]: a position is [lon, lat] with numbers")
        lon, lat = pos[0], pos[1]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise GeoJSONError(
                f"{where}[{i}]: [{lon}, {lat}] is outside WGS84 lon/lat range "
                "(coordinates are [longitude, latitude], in that order)"
            )
    if list(ring[0][:2]) != list(ring[-1][:2]):
        raise GeoJSONError(
            f"{where}: the ring is not closed: its last position must equal its first"
        )
    return len(ring)


def validate_polygon(geometry: Any) -> dict[str, Any]:
    """Return a normalised Polygon/MultiPolygon geometry dict or raise :class:`GeoJSONError`."""
    if not isinstance(geometry, dict):
        raise GeoJSONError("geometry must be a GeoJSON object")
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind not in ("Polygon", "MultiPolygon"):
        raise GeoJSONError(f"geometry type {kind!r} is not allowed: use Polygon or MultiPolygon")
    polygons = [coords] if kind == "Polygon" else coords
    if not isinstance(polygons, list) or not polygons:
        raise GeoJSONError("geometry.coordinates must be a non-empty list")
    vertices = 0
    for p, rings in enumerate(polygons):
        where = "coordinates" if kind == "Polygon" else f"coordinates[{p}]"
        if not isinstance(rings, list) or not rings:
            raise GeoJSONError(f"{where}: a polygon needs an exterior ring")
        for r, ring in enumerate(rings):
            vertices += _check_ring(ring, f"{where}[{r}]")
    if vertices > MAX_VERTICES:
        raise GeoJSONError(f"geometry has {vertices} vertices; the limit is {MAX_VERTICES}")
    geom = shape(geometry)
    if geom.convex_hull.area == 0:
        raise GeoJSONError("polygon has zero area (are all its points on one line?)")
    if not geom.is_valid:
        raise GeoJSONError(
            f"polygon is not valid: {explain_validity(geom)} (a ring may cross "
            "itself, or a hole lies outside its shell)"
        )
    return {"type": kind, "coordinates": coords}


def feature(id_: str, geometry: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "id": id_, "geometry": geometry, "properties": properties}
