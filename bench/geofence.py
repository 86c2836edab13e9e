"""Geofence throughput and advert-to-alert latency on the wristband gateway.

    .venv/bin/python bench/geofence.py [--bands 10000] [--zones 1000] [--rounds 5]

1. Checks per second: 10,000 bands against 1,000 zones through the engine (STRtree + prepared
   geometries, vectorised), against a naive per-zone shapely loop measured in the same run
   (on a sample of bands, extrapolated per band-zone check: the full naive run takes minutes).
2. Advert-to-alert latency: an SOS advert handed to the gateway's queue until the alert is in
   the durable outbox (the real AgentRuntime, SQLite outbox; no broker, so MQTT time excluded).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "firmware-bridges"))

from bridges.ble.advert import BandAdvert, encode_advert
from bridges.ble.sources import HeardAdvert
from edge.bus import BusConfig
from edge.geofence import (
    GeofenceEngine,
    LocalProjection,
    naive_violations,
    zones_from_geojson,
)
from edge.wristband.config import BandConfig, ReceiverConfig, WristbandConfig
from edge.wristband.service import WristbandService
from edge.wristband.tracker import AlertIntent

ORIGIN = (114.057, 22.543)
AREA_M = 10_000.0


def make_zones(n: int, n_bands: int, rng: np.random.Generator) -> dict[str, object]:
    proj = LocalProjection(*ORIGIN)
    feats = []
    for i in range(n):
        cx, cy = rng.uniform(-AREA_M / 2, AREA_M / 2, 2)
        r = rng.uniform(30, 120)
        k = int(rng.integers(5, 9))
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
        ring = [list(proj.to_lonlat(cx + r * np.cos(a), cy + r * np.sin(a))) for a in angles]
        ring.append(ring[0])
        inclusion = i % 2 == 0
        props: dict[str, object] = {"id": f"z{i}", "kind": "inclusion" if inclusion else
                                    "exclusion", "buffer_m": 5, "min_dwell_s": 2}
        if inclusion:  # each inclusion zone binds ten wearers (their homes)
            props["applies_to"] = [f"w{(i * 10 + j) % n_bands}" for j in range(10)]
        feats.append({"type": "Feature", "properties": props,
                      "geometry": {"type": "Polygon", "coordinates": [ring]}})
    return {"type": "FeatureCollection", "features": feats}


def bench_checks(n_bands: int, n_zones: int, rounds: int) -> None:
    rng = np.random.default_rng(7)
    zones = zones_from_geojson(make_zones(n_zones, n_bands, rng))
    t0 = time.perf_counter()
    engine = GeofenceEngine(zones, ORIGIN)
    build_s = time.perf_counter() - t0
    proj = engine.projection
    xs, ys = rng.uniform(-AREA_M / 2, AREA_M / 2, (2, n_bands))
    ents = [f"w{i}" for i in range(n_bands)]
    times = []
    events = 0
    for r in range(rounds):
        xs += rng.normal(0, 2, n_bands)
        ys += rng.normal(0, 2, n_bands)
        lon, lat = proj.to_lonlat(xs, ys)
        t = time.perf_counter()
        events += len(engine.check_many(ents, lon, lat, 1.8e9 + r))
        times.append(time.perf_counter() - t)
    best = min(times)
    engine_rate = n_bands * n_zones / best

    sample = 500
    lon, lat = proj.to_lonlat(xs[:sample], ys[:sample])
    t = time.perf_counter()
    for a, b in zip(lon, lat, strict=True):
        naive_violations(zones, float(a), float(b))
    naive_s = time.perf_counter() - t
    naive_rate = sample * n_zones / naive_s
    print(f"zones {n_zones}, bands {n_bands}, index build {build_s * 1000:.0f} ms")
    print(f"engine: {n_bands} band positions in {best * 1000:.1f} ms (best of {rounds}, median "
          f"{statistics.median(times) * 1000:.1f} ms) = {n_bands / best:,.0f} band updates/s = "
          f"{engine_rate:,.0f} band-zone checks/s ({events} events)")
    print(f"naive shapely loop: {naive_rate:,.0f} band-zone checks/s "
          f"({sample} bands x {n_zones} zones in {naive_s:.2f} s)")
    print(f"ratio engine/naive: {engine_rate / naive_rate:,.0f}x")


class _Latency:
    def __init__(self, want: int) -> None:
        self.samples: list[float] = []
        self.done = threading.Event()
        self.want = want
        self.last = 0.0

    def on_alert(self, intent: AlertIntent) -> None:
        # on_alert runs after runtime.raise_alert() returned: the alert is in the durable outbox.
        self.samples.append(time.perf_counter() - self.last)
        if len(self.samples) >= self.want:
            self.done.set()


def bench_latency(n: int) -> None:
    key = os.urandom(16)
    with tempfile.TemporaryDirectory() as tmp:
        lon, lat = ORIGIN
        cfg = WristbandConfig(
            site="bench", device="gw-bench", data_dir=Path(tmp),
            mqtt=BusConfig(port=1, reconnect_min_s=5, reconnect_max_s=5),
            receivers=[ReceiverConfig(id="rx", lon=lon, lat=lat)],
            bands=[BandConfig(band_id=1, wearer="w1")], position_interval_s=60,
        )
        lat_rec = _Latency(n)
        svc = WristbandService(cfg, keys={1: (key,)}, sources=[], on_alert=lat_rec.on_alert)
        svc.start()
        try:
            counter = 0
            for _ in range(n):
                for sos in (False, True):  # release then press: one SOS alert per pair
                    counter += 1
                    frame = encode_advert(BandAdvert(1, counter, 80, sos=sos), key)
                    before = len(lat_rec.samples)
                    lat_rec.last = time.perf_counter()
                    svc.submit(HeardAdvert("rx", "x", -60, {0xFFFF: frame}, time.monotonic()))
                    if sos:
                        while len(lat_rec.samples) == before:
                            time.sleep(0.0002)
            lat_rec.done.wait(10)
        finally:
            svc.stop()
    ms = sorted(s * 1000 for s in lat_rec.samples)
    print(f"advert->alert (durable in outbox) latency over {len(ms)} SOS adverts: median "
          f"{statistics.median(ms):.2f} ms, p95 {ms[int(len(ms) * 0.95) - 1]:.2f} ms, "
          f"max {ms[-1]:.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bands", type=int, default=10_000)
    parser.add_argument("--zones", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-samples", type=int, default=200)
    args = parser.parse_args()
    bench_checks(args.bands, args.zones, args.rounds)
    bench_latency(args.latency_samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
