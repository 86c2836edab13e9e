"""Simulated wearers for the demo, the tests and the positioning report.

Each simulated band walks a closed route, signs real v1 adverts with its key, and every receiver
"hears" it with an RSSI drawn from its path-loss calibration plus log-normal shadowing. The
adverts then go through exactly the pipeline a radio feeds.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from bridges.ble.advert import BandAdvert, GnssFix, encode_advert
from bridges.ble.sources import AdvertSink, HeardAdvert
from edge.positioning import Calibration
from edge.projection import LocalProjection
from edge.sim import RoutePoint, walk
from edge.wristband.config import SimulatedWearer, WristbandConfig

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _SimBand:
    spec: SimulatedWearer
    key: bytes
    counter: int = 0
    battery_pct: int = 90
    sos: bool = False
    tamper: bool = False


class SimulatedAirwaves:
    """An :class:`~bridges.ble.sources.AdvertSource` for all configured receivers at once."""

    receiver = "sim"

    def __init__(self, config: WristbandConfig, keys: Mapping[int, tuple[bytes, ...]], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if config.simulation is None:
            raise ValueError("config has no simulation section")
        self.config = config
        self.sim = config.simulation
        self._clock = clock
        self._rng = random.Random(self.sim.seed)  # noqa: S311 - simulated radio noise
        r0 = config.receivers[0]
        self.projection = LocalProjection(r0.lon, r0.lat)
        self._receivers = []
        for r in config.receivers:
            x, y = self.projection.to_xy(np.array([r.lon]), np.array([r.lat]))
            self._receivers.append((r.id, float(x[0]), float(y[0]),
                                    Calibration(r.tx_power_1m_dbm, r.path_loss_exponent)))
        self.bands = {w.band_id: _SimBand(w, keys[w.band_id][0]) for w in self.sim.wearers}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = clock()

    def truth(self, band_id: int, elapsed_s: float) -> tuple[float, float]:
        spec = self.bands[band_id].spec
        route = [RoutePoint(lon=lon, lat=lat) for lon, lat in spec.route]
        lon, lat, _ = walk(route, elapsed_s * spec.speed_mps)
        return lon, lat

    def set_flags(self, band_id: int, *, sos: bool | None = None, tamper: bool | None = None,
                  battery_pct: int | None = None) -> None:
        band = self.bands[band_id]
        if sos is not None:
            band.sos = sos
        if tamper is not None:
            band.tamper = tamper
        if battery_pct is not None:
            band.battery_pct = battery_pct

    def adverts_at(self, elapsed_s: float, now_s: float) -> list[HeardAdvert]:
        """One advertising event of every band, as heard by every receiver in range."""
        out: list[HeardAdvert] = []
        for band_id, band in self.bands.items():
            lon, lat = self.truth(band_id, elapsed_s)
            band.counter += 1
            fix = None
            if band.spec.gnss:
                # 3 m GNSS noise, metres -> degrees
                dx, dy = self._rng.gauss(0, 3), self._rng.gauss(0, 3)
                flon, flat = self.projection.to_lonlat(
                    *(float(v[0]) + d for v, d in zip(
                        self.projection.to_xy(np.array([lon]), np.array([lat])), (dx, dy),
                        strict=True)))
                fix = GnssFix(lat=flat, lon=flon, accuracy_m=5)
            frame = encode_advert(BandAdvert(band_id, band.counter, band.battery_pct,
                                             sos=band.sos, tamper=band.tamper, gnss=fix),
                                  band.key, self.config.company_id)
            x, y = self.projection.to_xy(np.array([lon]), np.array([lat]))
            for rid, rx, ry, cal in self._receivers:
                d = math.hypot(float(x[0]) - rx, float(y[0]) - ry)
                rssi = cal.rssi_dbm(d) + self._rng.gauss(0, self.sim.rssi_sigma_db)
                if rssi < self.sim.sensitivity_dbm:
                    continue
                out.append(HeardAdvert(rid, f"02:00:00:{band_id >> 16 & 0xFF:02X}:"
                                       f"{band_id >> 8 & 0xFF:02X}:{band_id & 0xFF:02X}",
                                       round(rssi), {self.config.company_id: frame}, now_s))
        return out

    def start(self, sink: AdvertSink) -> None:
        self._t0 = self._clock()
        self._thread = threading.Thread(target=self._run, args=(sink,), name="wristband-sim",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self, sink: AdvertSink) -> None:
        while not self._stop.wait(self.sim.advert_interval_s):
            now = self._clock()
            for heard in self.adverts_at(now - self._t0, now):
                sink(heard)


@dataclass(frozen=True, slots=True)
class MethodError:
    method: str
    samples: int
    median_m: float
    p90_m: float


def evaluate_methods(config: WristbandConfig, keys: Mapping[int, tuple[bytes, ...]],
                     duration_s: float = 300.0) -> list[MethodError]:
    """Walk the simulated wearers with a fake clock and score each position method against the
    known truth: nearest receiver, Kalman-smoothed WLS trilateration, and GNSS (for GNSS bands).
    Every tick evaluates all the methods that apply to the same readings."""
    from edge.wristband.tracker import WristbandTracker

    air = SimulatedAirwaves(config, keys)
    tracker = WristbandTracker(config, keys)
    errors: dict[str, list[float]] = {"nearest": [], "trilateration": [], "gnss": []}
    step = air.sim.advert_interval_s
    t = 0.0
    next_tick = config.position_interval_s
    while t < duration_s:
        for heard in air.adverts_at(t, t):
            tracker.on_advert(heard)
        if t >= next_tick:
            next_tick += config.position_interval_s
            for band_id, band in tracker.bands.items():
                if band_id not in air.bands:
                    continue
                tx, ty = (float(v[0]) for v in tracker.projection.to_xy(
                    *(np.array([c]) for c in air.truth(band_id, t))))
                fresh = tracker.fresh_rssi(band, t)
                if not fresh:
                    continue
                near = tracker.receivers[max(fresh, key=lambda r: fresh[r])]
                errors["nearest"].append(math.hypot(near.x - tx, near.y - ty))
                if len(fresh) >= 3:
                    est = tracker.trilaterate(fresh)
                    errors["trilateration"].append(math.hypot(est.x - tx, est.y - ty))
                if band.gnss is not None:
                    gx, gy = (float(v[0]) for v in tracker.projection.to_xy(
                        np.array([band.gnss.lon]), np.array([band.gnss.lat])))
                    errors["gnss"].append(math.hypot(gx - tx, gy - ty))
        t += step
    return [MethodError(m, len(e), float(np.median(e)), float(np.percentile(e, 90)))
            for m, e in errors.items() if e]
