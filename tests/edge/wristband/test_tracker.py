"""The wristband pipeline with a fake clock: every alert rule, authentication and positions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from bridges.ble.advert import BandAdvert, GnssFix, encode_advert
from bridges.ble.sources import HeardAdvert
from edge.alert_details import BatteryLowDetails, ClonedDeviceDetails, GeofenceExitDetails
from edge.bus import BusConfig
from edge.geofence import GeofenceEngine, LocalProjection, zones_from_geojson
from edge.positioning import Calibration, trilaterate
from edge.protocol import AlertKind, Severity
from edge.wristband.config import BandConfig, ReceiverConfig, WristbandConfig
from edge.wristband.demo import demo_config, demo_zones
from edge.wristband.presence import RssiKalman, ZonePresence
from edge.wristband.sim import evaluate_methods
from edge.wristband.tracker import WristbandTracker

ORIGIN = (114.057, 22.543)
P = LocalProjection(*ORIGIN)
KEY = bytes(range(16))
BAND = 0x1001


def _rx(rid: str, x: float, y: float, zone: str) -> ReceiverConfig:
    lon, lat = P.to_lonlat(x, y)
    return ReceiverConfig(id=rid, lon=lon, lat=lat, zone=zone)


def make(engine: GeofenceEngine | None = None, **over: object) -> WristbandTracker:
    cfg = WristbandConfig(
        site="s", device="gw", data_dir=Path("/nonexistent"),
        receivers=[_rx("a", -20, -20, "hall"), _rx("b", 20, -20, "hall"),
                   _rx("c", 20, 20, "garden"), _rx("d", -20, 20, "garden")],
        bands=[BandConfig(band_id=BAND, wearer="resident-1")],
        signal_lost_after_s=30, battery_low_pct=15, battery_rearm_pct=25,
        clone_alert_cooldown_s=60, **over)  # type: ignore[arg-type]
    return WristbandTracker(cfg, {BAND: (KEY,)}, engine)


def heard(counter: int, t: float, *, rx: str = "a", rssi: int = -60, key: bytes = KEY,
          band: int = BAND, **fields: object) -> HeardAdvert:
    adv = BandAdvert(band, counter, fields.pop("battery_pct", 80), **fields)  # type: ignore[arg-type]
    return HeardAdvert(rx, "02:00:00:00:10:01", rssi, {0xFFFF: encode_advert(adv, key)}, t)


def kinds(alerts: list) -> list[AlertKind]:  # type: ignore[type-arg]
    return [a.kind for a in alerts]


def test_sos_and_tamper_alert_on_rising_edge_only() -> None:
    tr = make()
    assert tr.on_advert(heard(1, 0)) == []
    [sos] = tr.on_advert(heard(2, 1, sos=True))
    assert (sos.kind, sos.severity, sos.entity) == (AlertKind.SOS, Severity.CRITICAL,
                                                     "resident-1")
    assert tr.on_advert(heard(3, 2, sos=True)) == []  # still held
    assert kinds(tr.on_advert(heard(4, 3, tamper=True))) == [AlertKind.TAMPER]
    assert tr.on_advert(heard(5, 4)) == []
    assert kinds(tr.on_advert(heard(6, 5, sos=True))) == [AlertKind.SOS]  # pressed again


def test_battery_low_with_rearm_hysteresis() -> None:
    tr = make()
    assert kinds(tr.on_advert(heard(1, 0, battery_pct=14))) == [AlertKind.BATTERY_LOW]
    assert tr.on_advert(heard(2, 1, battery_pct=16)) == []
    assert tr.on_advert(heard(3, 2, battery_pct=12)) == []  # not re-armed yet
    assert tr.on_advert(heard(4, 3, battery_pct=30)) == []
    [low] = tr.on_advert(heard(5, 4, battery_pct=10))
    assert low.details == BatteryLowDetails(battery_pct=10)
    assert tr.on_advert(heard(6, 5, battery_pct=None)) == []


def test_signal_lost_once_then_rearmed_by_next_advert() -> None:
    tr = make()
    tr.on_advert(heard(1, 0))
    alerts, _ = tr.tick(29, 1.8e9)
    assert alerts == []
    alerts, positions = tr.tick(31, 1.8e9)
    assert kinds(alerts) == [AlertKind.SIGNAL_LOST]
    assert positions == []
    assert tr.tick(60, 1.8e9)[0] == []
    tr.on_advert(heard(2, 61))
    assert kinds(tr.tick(100, 1.8e9)[0]) == [AlertKind.SIGNAL_LOST]


def test_forged_and_replayed_adverts_raise_cloned_device_with_cooldown() -> None:
    tr = make()
    tr.on_advert(heard(10, 0))
    [forged] = tr.on_advert(heard(11, 1, key=bytes(16)))
    assert forged.kind is AlertKind.CLONED_DEVICE
    assert isinstance(forged.details, ClonedDeviceDetails)
    assert forged.details.verdict == "forged"
    assert tr.on_advert(heard(9, 2)) == []  # replay inside the cooldown: counted only
    assert tr.counters["verdict_replayed"] == 1
    [replay] = tr.on_advert(heard(9, 70))
    assert isinstance(replay.details, ClonedDeviceDetails)
    assert replay.details.verdict == "replayed"
    # a forged SOS never raises an SOS alert
    assert AlertKind.SOS not in kinds(tr.on_advert(heard(12, 140, key=bytes(16), sos=True)))


def test_duplicates_feed_rssi_but_not_alerts_and_junk_is_counted() -> None:
    tr = make()
    assert kinds(tr.on_advert(heard(1, 0, sos=True, rx="a"))) == [AlertKind.SOS]
    assert tr.on_advert(heard(1, 0.1, sos=True, rx="b", rssi=-70)) == []
    assert set(tr.bands[BAND].readings) == {"a", "b"}
    assert tr.on_advert(heard(1, 0, band=0x2002)) == []
    assert tr.on_advert(HeardAdvert("a", "x", -50, {0x004C: b"apple"}, 0)) == []
    assert tr.on_advert(HeardAdvert("a", "x", -50, {0xFFFF: b"\x10short"}, 0)) == []
    assert tr.counters["unknown_band"] == 1
    assert tr.counters["foreign_advert"] == 1
    assert tr.counters["advert_bad_length"] == 1
    assert tr.counters["verdict_duplicate"] == 1


def test_positions_trilateration_gnss_and_nearest() -> None:
    tr = make()
    cal = Calibration()
    truth = (5.0, -3.0)
    for n, (rid, x, y) in enumerate([("a", -20, -20), ("b", 20, -20), ("c", 20, 20),
                                     ("d", -20, 20)]):
        rssi = round(cal.rssi_dbm(math.hypot(truth[0] - x, truth[1] - y)))
        tr.on_advert(heard(1, 0.1 * n, rx=rid, rssi=rssi))
    _, [pos] = tr.tick(1, 1.8e9)
    x, y = P.to_xy(np.array([pos.lon]), np.array([pos.lat]))
    assert math.hypot(float(x[0]) - truth[0], float(y[0]) - truth[1]) < 3.0
    assert tr.band_snapshot()["resident-1"]["method"] == "trilateration"
    lon, lat = P.to_lonlat(30, 40)
    tr.on_advert(heard(2, 2, gnss=GnssFix(lat=lat, lon=lon, accuracy_m=4)))
    _, [gpos] = tr.tick(3, 1.8e9)
    assert (round(gpos.lon, 6), round(gpos.lat, 6), gpos.accuracy_m) == (
        round(lon, 6), round(lat, 6), 4.0)
    # GNSS goes stale and only one receiver is fresh: nearest receiver, zone-level
    tr.on_advert(heard(3, 20, rx="c", rssi=-65))
    _, [npos] = tr.tick(21, 1.8e9)
    assert tr.band_snapshot()["resident-1"] == {
        "battery_pct": 80, "sos": False, "tamper": False, "zone": "garden", "method": "nearest"}
    assert npos.accuracy_m is not None
    assert npos.accuracy_m > 1


def test_geofence_exit_alert_from_the_tracker() -> None:
    engine = GeofenceEngine(zones_from_geojson(demo_zones(ORIGIN)), ORIGIN)
    tr = make(engine)
    lon, lat = P.to_lonlat(0, 0)
    far_lon, far_lat = P.to_lonlat(75, 0)
    tr.on_advert(heard(1, 0, gnss=GnssFix(lat, lon, 3)))
    assert tr.tick(1, 1.8e9)[0] == []
    alerts: list = []  # type: ignore[type-arg]
    for n in range(2, 8):
        tr.on_advert(heard(n, n, gnss=GnssFix(far_lat, far_lon, 3)))
        alerts += tr.tick(n + 0.5, 1.8e9 + n)[0]
    [ex] = alerts
    assert (ex.kind, ex.zone, ex.entity) == (AlertKind.GEOFENCE_EXIT, "care-home", "resident-1")
    assert ex.location is not None
    assert ex.details == GeofenceExitDetails(method="gnss")


def test_kalman_and_presence_hysteresis() -> None:
    k = RssiKalman(process_var_db2_per_s=1.0, measurement_sigma_db=4.0)
    rng = np.random.default_rng(0)
    raw = -70 + rng.normal(0, 4, 200)
    smooth = [k.update(float(v), i * 0.5) for i, v in enumerate(raw)]
    assert np.std(smooth[50:]) < np.std(raw[50:]) / 2
    zp = ZonePresence(hysteresis_db=6, min_hold_s=3)
    assert zp.update({"a": -60, "b": -63}, 0) == "a"
    assert zp.update({"a": -60, "b": -57}, 1) == "a"  # better, but inside the hysteresis
    assert zp.update({"a": -60, "b": -50}, 2) == "a"  # clearly better: hold starts
    assert zp.update({"a": -60, "b": -50}, 4) == "a"
    assert zp.update({"a": -60, "b": -50}, 5.5) == "b"
    assert zp.update({"a": -60}, 6) == "a"  # b went silent
    assert zp.update({}, 7) is None


def test_trilateration_exact_and_refusals() -> None:
    anchors = np.array([[0.0, 0.0], [30.0, 0.0], [0.0, 30.0], [30.0, 30.0]])
    truth = np.array([12.0, 7.0])
    d = np.hypot(*(anchors - truth).T)
    est = trilaterate(anchors, d, np.ones(4))
    assert math.hypot(est.x - 12, est.y - 7) < 0.05
    with pytest.raises(ValueError, match="three or more"):
        trilaterate(anchors[:2], d[:2], np.ones(2))


def test_simulated_walk_method_errors() -> None:
    cfg = demo_config("s", BusConfig(), Path("/nonexistent"), ORIGIN)
    keys = {b.band_id: (bytes([b.band_id & 0xFF]) * 16,) for b in cfg.bands}
    result = {m.method: m for m in evaluate_methods(cfg, keys, duration_s=120)}
    assert set(result) == {"nearest", "trilateration", "gnss"}
    assert result["gnss"].median_m < result["trilateration"].median_m
    assert result["trilateration"].median_m < result["nearest"].median_m
