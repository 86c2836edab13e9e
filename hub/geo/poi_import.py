"""Reading points of interest from GeoJSON or CSV files: every problem is an
:class:`PoiImportError` naming the item and what to fix."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from edge.validators import SEGMENT_PATTERN, SEGMENT_RE, utcnow
from hub.errors import Invalid, Unsupported
from hub.storable import UnstorableError, check_json

CSV_COLUMNS = ("id", "name", "category", "lon", "lat")
GEOJSON_TYPES = ("application/json", "application/geo+json")
CSV_TYPE = "text/csv"


class PoiImportError(Invalid):
    """A file of points of interest that cannot be imported; says which item and why."""


def parse(site: str, raw: bytes, media_type: str) -> list[dict[str, Any]]:
    """Rows for the ``pois`` table from a file; refuses duplicate ids."""
    if media_type not in (CSV_TYPE, *GEOJSON_TYPES):
        raise Unsupported("send text/csv or application/geo+json")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise PoiImportError("the file must be UTF-8 text") from err
    if "\x00" in text:
        raise PoiImportError("the file must not contain NUL (\\u0000) characters")
    if media_type == CSV_TYPE:
        rows = _from_csv(site, text)
    else:
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as err:
            raise PoiImportError(f"not valid JSON: {err.msg} at line {err.lineno}") from err
        except RecursionError as err:
            raise PoiImportError("the JSON is nested too deeply to be GeoJSON") from err
        except ValueError as err:
            # NaN/Infinity, or an integer past Python's digit limit
            raise PoiImportError(f"not valid JSON: {err}") from err
        try:
            check_json(data, "file")
        except UnstorableError as err:
            raise PoiImportError(str(err)) from err
        rows = _from_geojson(site, data)
    if len({r["id"] for r in rows}) != len(rows):
        raise PoiImportError("duplicate ids in the file")
    return rows


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _is_number(value: Any) -> bool:
    # bool is an int in Python: [true, false] must not become (1, 0)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _row(
    site: str,
    index: int,
    *,
    pid: Any,
    name: Any,
    category: Any,
    lon: Any,
    lat: Any,
    extra: dict[str, Any],
) -> dict[str, Any]:
    where = f"item {index}"
    if not isinstance(pid, str) or not SEGMENT_RE.fullmatch(pid):
        raise PoiImportError(f"{where}: id {pid!r} must match {SEGMENT_PATTERN}")
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        raise PoiImportError(f"{where} ({pid}): name must be 1-200 characters")
    category = str(category or "place").strip().lower()
    if not (category.replace("_", "").isalnum() and len(category) <= 64):
        raise PoiImportError(
            f"{where} ({pid}): category must be a short word like 'shelter' or 'aed'"
        )
    if not all(isinstance(c, str) or _is_number(c) for c in (lon, lat)):
        raise PoiImportError(f"{where} ({pid}): lon/lat must be numbers")
    try:
        lon_f, lat_f = float(lon), float(lat)
    except (TypeError, ValueError, OverflowError) as err:
        raise PoiImportError(f"{where} ({pid}): lon/lat must be numbers") from err
    if not (-180 <= lon_f <= 180 and -90 <= lat_f <= 90):
        raise PoiImportError(
            f"{where} ({pid}): [{lon_f}, {lat_f}] is outside WGS84 lon/lat range (longitude first)"
        )
    return {
        "id": pid,
        "site": site,
        "name": name,
        "category": category,
        "lon": lon_f,
        "lat": lat_f,
        "properties": extra,
        "updated_at": utcnow(),
    }


def _from_geojson(site: str, data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise PoiImportError("expected a GeoJSON FeatureCollection of Point features")
    features = data.get("features") or []
    if not isinstance(features, list):
        raise PoiImportError("features must be a list of GeoJSON Point features")
    rows = []
    for i, feat in enumerate(features):
        if not isinstance(feat, dict):
            raise PoiImportError(f"item {i}: not a GeoJSON Feature")
        geom = feat.get("geometry") or {}
        props = feat.get("properties") or {}
        coords = geom.get("coordinates") if isinstance(geom, dict) else None
        if (
            not isinstance(geom, dict)
            or geom.get("type") != "Point"
            or not isinstance(coords, list)
            or len(coords) not in (2, 3)
            or not all(_is_number(c) for c in coords)
            or not isinstance(props, dict)
        ):
            raise PoiImportError(
                f"item {i}: points of interest must be Point features with "
                "coordinates [lon, lat] as numbers"
            )
        pid = feat.get("id", props.get("id"))
        extra = {k: v for k, v in props.items() if k not in ("id", "name", "category")}
        rows.append(
            _row(
                site,
                i,
                pid=pid,
                name=props.get("name"),
                category=props.get("category"),
                lon=coords[0],
                lat=coords[1],
                extra=extra,
            )
        )
    return rows


def _from_csv(site: str, text: str) -> list[dict[str, Any]]:
    try:
        # newline="": the csv module splits lines itself (a lone CR ends a line, not the parse)
        reader = csv.DictReader(io.StringIO(text, newline=""))
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise PoiImportError(
                f"CSV header lacks {', '.join(missing)}: the first line must "
                f"name the columns {','.join(CSV_COLUMNS)} (others are kept)"
            )
        return [
            _row(
                site,
                i + 1,
                pid=r["id"],
                name=r["name"],
                category=r["category"],
                lon=r["lon"],
                lat=r["lat"],
                extra={k: v for k, v in r.items() if k not in CSV_COLUMNS and k is not None},
            )
            for i, r in enumerate(reader)
        ]
    except csv.Error as err:
        raise PoiImportError(f"not valid CSV: {err}") from err
