"""Import of grid cells from GeoJSON: the whole audited, all-or-nothing import against parsing
and validating the same file alone.

    .venv/bin/python bench/incidents_org.py [--cells 1000] [--vertices 24] [--rounds 5]

The file holds ``--cells`` irregular, simple polygons (star-shaped rings of ``--vertices``
positions around a grid of centres, like cells traced in a GIS), each naming a team and a
department per line of work. The baseline, measured in the same run, is what any importer
must do at least: ``json.loads`` of the bytes and shapely's ``shape`` + ``is_valid`` per
feature. The import is :meth:`hub.geo.service.GeoService.import_cells` on a real migrated
SQLite store: parse, every check of hub/geo/cell_import.py and geojson.py, team and
department lookups, one audited transaction writing cells and responsibilities. The first
round creates the cells, the others update them (a re-import of the same file); the median
of the update rounds is reported.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "firmware-bridges"))

from shapely.geometry import shape

from hub.audit import AuditTrail
from hub.geo.service import GeoService
from hub.schema import departments, sites, teams
from hub.store import Store

SITE = "bench"
LINES = ("public_security", "city_management", "sanitation", "petitions")


def _ring(cx: float, cy: float, radius: float, vertices: int, rnd: random.Random) -> list[Any]:
    """A simple polygon: angles strictly increasing, radius jittered (star-shaped)."""
    pts = []
    for k in range(vertices):
        a = 2 * math.pi * k / vertices
        r = radius * rnd.uniform(0.7, 1.0)
        pts.append([round(cx + r * math.cos(a), 7), round(cy + r * math.sin(a), 7)])
    return [*pts, pts[0]]


def make_file(n: int, vertices: int, seed: int = 12) -> bytes:
    rnd = random.Random(seed)
    side = math.ceil(math.sqrt(n))
    step = 0.002
    features = []
    for i in range(n):
        cx = 114.0 + (i % side) * step
        cy = 22.5 + (i // side) * step
        features.append(
            {
                "type": "Feature",
                "id": f"cell-{i:05d}",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [_ring(cx, cy, step * 0.45, vertices, rnd)],
                },
                "properties": {
                    "name": f"Cell {i}",
                    "team": f"team-{i % 20}",
                    "departments": {line: f"dep-{line}" for line in LINES},
                    "ward": f"W{i % 7}",
                },
            }
        )
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def baseline(raw: bytes) -> float:
    """Seconds to parse the file and have shapely validate every polygon."""
    t0 = time.perf_counter()
    data = json.loads(raw)
    for feat in data["features"]:
        if not shape(feat["geometry"]).is_valid:
            raise SystemExit(f"bench polygon {feat['id']} is invalid")
    return time.perf_counter() - t0


def _seed(store: Store) -> None:
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(sites.insert().values(id=SITE, name=SITE, created_at=now))
        conn.execute(
            departments.insert(),
            [
                {"id": f"dep-{ln}", "site": None, "name": ln, "line": ln, "updated_at": now}
                for ln in LINES
            ],
        )
        conn.execute(
            teams.insert(),
            [
                {"id": f"team-{i}", "site": SITE, "name": f"Team {i}", "updated_at": now}
                for i in range(20)
            ],
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cells", type=int, default=1000)
    ap.add_argument("--vertices", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    raw = make_file(args.cells, args.vertices)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/hub.sqlite")
        _seed(store)
        geo = GeoService(store.engine, AuditTrail(store.engine), hub_site=SITE)
        base = statistics.median(baseline(raw) for _ in range(args.rounds))
        t0 = time.perf_counter()
        first = geo.import_cells("bench", SITE, raw, "application/geo+json", replace=False)
        create_s = time.perf_counter() - t0
        if first.created != args.cells:
            raise SystemExit(f"created {first.created} of {args.cells}")
        update_s = []
        for _ in range(max(1, args.rounds - 1)):
            t0 = time.perf_counter()
            geo.import_cells("bench", SITE, raw, "application/geo+json", replace=True)
            update_s.append(time.perf_counter() - t0)
        upd = statistics.median(update_s)
        store.engine.dispose()
    n = args.cells
    print(f"file: {n} cells x {args.vertices} vertices, {len(raw) / 1e6:.2f} MB")
    print(f"json.loads + shapely is_valid (baseline) {n / base:10,.0f} cells/s  1.00")
    print(
        f"import, creating the cells               {n / create_s:10,.0f} cells/s  "
        f"{base / create_s:.2f}"
    )
    print(f"import, updating them (replace=true)     {n / upd:10,.0f} cells/s  {base / upd:.2f}")
    print(f"import of {n} cells: {create_s * 1000:.0f} ms to create, {upd * 1000:.0f} ms to update")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
