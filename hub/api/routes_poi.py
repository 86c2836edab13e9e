"""Points of interest (emergency supplies, organisations, key places): GeoJSON or CSV import,
GeoJSON out."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy import delete, select

from edge.validators import SEGMENT_PATTERN, SEGMENT_RE, utcnow
from hub.api.deps import Ctx, Me, PageDep, encode_cursor, guarded
from hub.auth import Permission, Principal
from hub.context import HubContext
from hub.geojson import feature
from hub.schema import pois

router = APIRouter(prefix="/api/v1/poi", tags=["points of interest"])
CATEGORY_RE = r"^[a-z0-9_]{1,64}$"
CSV_COLUMNS = ("id", "name", "category", "lon", "lat")


class ImportResult(BaseModel):
    imported: int
    replaced: bool


def _row(
    site: str,
    index: int,
    pid: Any,
    name: Any,
    category: Any,
    lon: Any,
    lat: Any,
    extra: dict[str, Any],
) -> dict[str, Any]:
    where = f"item {index}"
    if not isinstance(pid, str) or not SEGMENT_RE.fullmatch(pid):
        raise HTTPException(422, f"{where}: id {pid!r} must match {SEGMENT_PATTERN}")
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        raise HTTPException(422, f"{where} ({pid}): name must be 1-200 characters")
    category = str(category or "place").strip().lower()
    if not (category.replace("_", "").isalnum() and len(category) <= 64):
        raise HTTPException(
            422, f"{where} ({pid}): category must be a short word like 'shelter' or 'aed'"
        )
    try:
        lon_f, lat_f = float(lon), float(lat)
    except (TypeError, ValueError) as err:
        raise HTTPException(422, f"{where} ({pid}): lon/lat must be numbers") from err
    if not (-180 <= lon_f <= 180 and -90 <= lat_f <= 90):
        raise HTTPException(
            422,
            f"{where} ({pid}): [{lon_f}, {lat_f}] is outside WGS84 lon/lat range (longitude first)",
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
        raise HTTPException(422, "expected a GeoJSON FeatureCollection of Point features")
    rows = []
    for i, feat in enumerate(data.get("features") or []):
        if not isinstance(feat, dict):
            raise HTTPException(422, f"item {i}: not a GeoJSON Feature")
        geom = feat.get("geometry") or {}
        props = feat.get("properties") or {}
        coords = geom.get("coordinates") if isinstance(geom, dict) else None
        if (
            not isinstance(geom, dict)
            or geom.get("type") != "Point"
            or not isinstance(coords, list)
            or len(coords) < 2
            or not isinstance(props, dict)
        ):
            raise HTTPException(422, f"item {i}: points of interest must be Point features")
        pid = feat.get("id", props.get("id"))
        extra = {k: v for k, v in props.items() if k not in ("id", "name", "category")}
        rows.append(
            _row(
                site, i, pid, props.get("name"), props.get("category"), coords[0], coords[1], extra
            )
        )
    return rows


def _from_csv(site: str, text: str) -> list[dict[str, Any]]:
    # newline="": the csv module splits lines itself (a lone CR ends a line instead of raising)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise HTTPException(
                422,
                f"CSV header lacks {', '.join(missing)}: the first line must "
                f"name the columns {','.join(CSV_COLUMNS)} (others are kept)",
            )
        records = list(reader)
    except csv.Error as err:  # e.g. a field over the csv module's size limit: the file's fault
        raise HTTPException(422, f"not valid CSV at line {reader.line_num}: {err}") from err
    return [
        _row(
            site,
            i + 1,
            r["id"],
            r["name"],
            r["category"],
            r["lon"],
            r["lat"],
            {k: v for k, v in r.items() if k not in CSV_COLUMNS and k is not None},
        )
        for i, r in enumerate(records)
    ]


_IMPORT_ROUTE = guarded(Permission.ZONES_WRITE, {422: {"description": "says what to fix"}})
_IMPORT_ROUTE["openapi_extra"]["requestBody"] = {
    "required": True,
    "content": {
        "application/geo+json": {"schema": {"type": "object"}},
        "text/csv": {"schema": {"type": "string"}},
    },
}


@router.post("/import", response_model=ImportResult, **_IMPORT_ROUTE)
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
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    # Parsing and the audited write are blocking work: off the event loop, so the live
    # stream keeps pumping while a large file is imported.
    return await run_in_threadpool(_import_file, ctx, me, site, replace, raw, kind)


def _import_file(
    ctx: HubContext, me: Principal, site: str, replace: bool, raw: bytes, kind: str
) -> ImportResult:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise HTTPException(422, "the file must be UTF-8 text") from err
    if kind == "text/csv":
        rows = _from_csv(site, text)
    elif kind in ("application/json", "application/geo+json"):
        try:
            rows = _from_geojson(site, json.loads(text))
        except json.JSONDecodeError as err:
            raise HTTPException(422, f"not valid JSON: {err.msg} at line {err.lineno}") from err
    else:
        raise HTTPException(415, "send text/csv or application/geo+json")
    if len({r["id"] for r in rows}) != len(rows):
        raise HTTPException(422, "duplicate ids in the file")
    with ctx.audit.change(
        me.username, "poi.import", site, {"count": len(rows), "replace": replace}
    ) as conn:
        if replace:
            conn.execute(delete(pois).where(pois.c.site == site))
        else:
            conn.execute(delete(pois).where(pois.c.id.in_([r["id"] for r in rows])))
        if rows:
            conn.execute(pois.insert(), rows)
    return ImportResult(imported=len(rows), replaced=replace)


@router.get("", **guarded(Permission.ZONES_READ))
def list_pois(
    ctx: Ctx,
    page: PageDep,
    site: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None,
    category: Annotated[str | None, Query(pattern=CATEGORY_RE)] = None,
) -> dict[str, Any]:
    """Points of interest as a GeoJSON FeatureCollection (``next_cursor`` for more)."""
    stmt = select(pois).order_by(pois.c.id).limit(page.limit)
    if site:
        stmt = stmt.where(pois.c.site == site)
    if category:
        stmt = stmt.where(pois.c.category == category)
    if page.after:
        stmt = stmt.where(pois.c.id > str(page.after[0]))
    with ctx.engine.connect() as conn:
        rows = conn.execute(stmt).all()
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
