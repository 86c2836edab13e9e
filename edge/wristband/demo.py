"""The wristband piece of ``gridward demo``: one gateway with four receivers round a care home,
three simulated residents with authenticated bands; resident-3 walks out of the home's zone
and onto the road (a geofence exit, then an exclusion-zone entry)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.bus import BusConfig
from edge.geofence import GeofenceEngine, zones_from_geojson
from edge.projection import LocalProjection
from edge.wristband.config import (
    BandConfig,
    ReceiverConfig,
    SimulatedWearer,
    SimulationConfig,
    WristbandConfig,
)
from edge.wristband.service import WristbandService
from edge.wristband.sim import SimulatedAirwaves

GATEWAY = "wristband-gw-1"
DEMO_DEVICES: list[str] = [GATEWAY]

# Layout in metres east/north of the site origin.
_HOME = [(-60, -40), (60, -40), (60, 40), (-60, 40)]
_ROAD = [(85, -80), (105, -80), (105, 80), (85, 80)]
_RECEIVERS = {"rx-nw": (-50, 35), "rx-ne": (50, 35), "rx-se": (50, -35), "rx-sw": (-50, -35)}
_WEARERS: dict[str, tuple[int, list[tuple[float, float]], float, bool]] = {
    # wearer: (band id, route, speed m/s, GNSS)
    "resident-1": (0x1001, [(-30, -20), (30, -20), (30, 20), (-30, 20)], 1.0, False),
    "resident-2": (0x1002, [(-20, 0), (20, 10), (0, 25)], 0.8, False),
    "resident-3": (0x1003, [(40, 0), (100, 0), (100, -15), (40, -15)], 2.0, True),
}


def _lonlat(origin: tuple[float, float], x: float, y: float) -> tuple[float, float]:
    return LocalProjection(*origin).to_lonlat(x, y)


def _polygon(origin: tuple[float, float], pts: list[tuple[int, int]]) -> list[list[float]]:
    ring = [list(_lonlat(origin, x, y)) for x, y in pts]
    return [*ring, ring[0]]


def demo_zones(origin: tuple[float, float]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature",
         "properties": {"id": "care-home", "name": "Care home grounds", "kind": "inclusion",
                        "min_dwell_s": 3, "buffer_m": 5, "severity": "high",
                        "timezone": "Asia/Shanghai"},
         "geometry": {"type": "Polygon", "coordinates": [_polygon(origin, _HOME)]}},
        {"type": "Feature",
         "properties": {"id": "main-road", "name": "Main road", "kind": "exclusion",
                        "min_dwell_s": 2, "buffer_m": 3, "severity": "critical"},
         "geometry": {"type": "Polygon", "coordinates": [_polygon(origin, _ROAD)]}},
    ]}


def demo_config(site: str, mqtt: BusConfig, data_dir: Path,
                origin: tuple[float, float]) -> WristbandConfig:
    receivers = [ReceiverConfig(id=rid, lon=_lonlat(origin, x, y)[0], lat=_lonlat(origin, x, y)[1],
                                zone="care-home", tx_power_1m_dbm=-59, path_loss_exponent=2.0)
                 for rid, (x, y) in _RECEIVERS.items()]
    wearers = [SimulatedWearer(band_id=band, route=[_lonlat(origin, x, y) for x, y in route],
                               speed_mps=speed, gnss=gnss)
               for band, route, speed, gnss in _WEARERS.values()]
    return WristbandConfig(
        site=site, device=GATEWAY, mqtt=mqtt, data_dir=data_dir, health_interval_s=5.0,
        receivers=receivers,
        bands=[BandConfig(band_id=band, wearer=w) for w, (band, *_rest) in _WEARERS.items()],
        simulation=SimulationConfig(wearers=wearers, advert_interval_s=0.5, rssi_sigma_db=3.0),
        position_interval_s=1.0, signal_lost_after_s=20.0,
        # One gateway already trilaterates with all four receivers itself; hub fusion only
        # adds information across gateways, so the single-gateway demo does not send sightings.
        publish_sightings=False,
    )


def start_demo(site: str, mqtt_for: Callable[[str], BusConfig], data_dir: Path,
               origin: tuple[float, float]) -> WristbandService:
    """Start the simulated gateway; the caller stops it with ``.stop()``."""
    config = demo_config(site, mqtt_for(GATEWAY), data_dir, origin)
    # Fresh random keys per run: the demo provisions its own bands, like the hub would.
    keys = {b.band_id: (os.urandom(16),) for b in config.bands}
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "wristband-zones.geojson").write_text(json.dumps(demo_zones(origin)),
                                                      encoding="utf-8")
    engine = GeofenceEngine(zones_from_geojson(demo_zones(origin), "demo zones"), origin)
    service = WristbandService(config, keys=keys, engine=engine,
                               sources=[SimulatedAirwaves(config, keys)])
    service.start()
    return service


__all__ = ["DEMO_DEVICES", "demo_config", "demo_zones", "start_demo"]
