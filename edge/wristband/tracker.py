"""The wristband pipeline as a pure state machine: heard adverts in; alert intents, positions
and presence out. No threads, no MQTT, no clock of its own (``t_s`` is monotonic seconds and
``wall_s`` epoch seconds, both passed in), so every rule is tested with a fake clock."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from bridges.ble.advert import AdvertError, BandAdvert, GnssFix, decode_advert
from bridges.ble.auth import AdvertVerifier, Verdict
from bridges.ble.sources import HeardAdvert
from edge.alert_details import (
    AlertDetails,
    BatteryLowDetails,
    ClonedDeviceDetails,
    GeofenceEntryDetails,
    GeofenceExitDetails,
    SignalLostDetails,
    SosDetails,
    TamperDetails,
)
from edge.geofence import GeofenceEngine
from edge.positioning import Calibration, Estimate, RangeReading, locate
from edge.projection import LocalProjection
from edge.protocol import AlertKind, EntityKind, Location, Position, Severity, Sighting
from edge.wristband.config import WristbandConfig
from edge.wristband.presence import RssiKalman, ZonePresence

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlertIntent:
    severity: Severity
    entity: str
    title: str
    location: Location | None
    zone: str | None
    details: AlertDetails

    @property
    def kind(self) -> AlertKind:
        return self.details.KIND


@dataclass(slots=True)
class _Reading:
    kalman: RssiKalman
    last_s: float


@dataclass(slots=True)
class _Band:
    wearer: str
    readings: dict[str, _Reading] = field(default_factory=dict)
    presence: ZonePresence | None = None
    last_seen_s: float | None = None
    battery_pct: int | None = None
    sos: bool = False
    tamper: bool = False
    charging: bool = False
    gnss: GnssFix | None = None
    gnss_s: float = 0.0
    lost_alerted: bool = False
    battery_alerted: bool = False
    clone_alert_s: float | None = None
    estimate: Estimate | None = None
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class Receiver:
    id: str
    x: float
    y: float
    lon: float
    lat: float
    zone: str | None
    calibration: Calibration


class WristbandTracker:
    def __init__(self, config: WristbandConfig, keys: Mapping[int, tuple[bytes, ...]],
                 engine: GeofenceEngine | None = None) -> None:
        self.config = config
        self.verifier = AdvertVerifier(keys, company_id=config.company_id,
                                       duplicate_window_s=config.duplicate_window_s)
        r0 = config.receivers[0]
        self.engine = engine
        self.projection = engine.projection if engine is not None else LocalProjection(
            r0.lon, r0.lat)
        self.receivers: dict[str, Receiver] = {}
        for r in config.receivers:
            x, y = self.projection.to_xy(np.array([r.lon]), np.array([r.lat]))
            self.receivers[r.id] = Receiver(
                r.id, float(x[0]), float(y[0]), r.lon, r.lat, r.zone,
                Calibration(r.tx_power_1m_dbm, r.path_loss_exponent))
        self.bands: dict[int, _Band] = {b.band_id: _Band(b.wearer) for b in config.bands}
        self.counters: Counter[str] = Counter()

    # -- adverts ------------------------------------------------------------------------------

    def on_advert(self, heard: HeardAdvert) -> list[AlertIntent]:
        frame = heard.manufacturer_data.get(self.config.company_id)
        if frame is None:
            self.counters["foreign_advert"] += 1
            return []
        try:
            signed = decode_advert(frame)
        except AdvertError as err:
            self.counters[f"advert_{err.reason}"] += 1
            return []
        adv = signed.advert
        band = self.bands.get(adv.band_id)
        if band is None:
            self.counters["unknown_band"] += 1
            return []
        t = heard.monotonic_s
        verdict = self.verifier.check(signed, t)
        self.counters[f"verdict_{verdict.value}"] += 1
        if verdict is not Verdict.ACCEPTED and verdict is not Verdict.DUPLICATE:
            # UNKNOWN_BAND cannot happen for a configured band unless its key is missing.
            return self._clone_alert(band, verdict, heard) if verdict in (
                Verdict.FORGED, Verdict.REPLAYED) else []
        reading = band.readings.get(heard.receiver)
        if reading is None:
            reading = band.readings[heard.receiver] = _Reading(
                RssiKalman(self.config.rssi_process_var_db2_per_s,
                           self.config.rssi_measurement_sigma_db), t)
        reading.kalman.update(heard.rssi_dbm, t)
        reading.last_s = t
        band.last_seen_s = t
        if verdict is Verdict.DUPLICATE:
            return []
        return self._apply_fields(band, adv, t)

    def _apply_fields(self, band: _Band, adv: BandAdvert, t: float) -> list[AlertIntent]:
        out: list[AlertIntent] = []
        where = self._location(band)
        if band.lost_alerted:
            band.lost_alerted = False
            log.info("band of %s heard again", band.wearer)
        if adv.sos and not band.sos:
            out.append(AlertIntent(Severity.CRITICAL, band.wearer,
                                   f"SOS pressed by {band.wearer}", where, band.zone,
                                   SosDetails()))
        if adv.tamper and not band.tamper:
            out.append(AlertIntent(Severity.HIGH, band.wearer,
                                   f"strap of {band.wearer}'s band opened", where, band.zone,
                                   TamperDetails()))
        band.sos, band.tamper, band.charging = adv.sos, adv.tamper, adv.charging
        if adv.battery_pct is not None:
            band.battery_pct = adv.battery_pct
            if adv.battery_pct <= self.config.battery_low_pct and not band.battery_alerted:
                band.battery_alerted = True
                out.append(AlertIntent(
                    Severity.LOW, band.wearer,
                    f"battery of {band.wearer}'s band at {adv.battery_pct}%", where, band.zone,
                    BatteryLowDetails(battery_pct=adv.battery_pct)))
            elif adv.battery_pct >= self.config.battery_rearm_pct or adv.charging:
                band.battery_alerted = False
        if adv.gnss is not None:
            band.gnss, band.gnss_s = adv.gnss, t
        return out

    def _clone_alert(self, band: _Band, verdict: Verdict, heard: HeardAdvert
                     ) -> list[AlertIntent]:
        t = heard.monotonic_s
        if (band.clone_alert_s is not None
                and t - band.clone_alert_s < self.config.clone_alert_cooldown_s):
            return []
        band.clone_alert_s = t
        what = "forged (bad tag)" if verdict is Verdict.FORGED else "replayed (old counter)"
        return [AlertIntent(
            Severity.HIGH, band.wearer,
            f"{what} advert for {band.wearer}'s band", self._location(band), band.zone,
            ClonedDeviceDetails(verdict="forged" if verdict is Verdict.FORGED else "replayed",
                                receiver=heard.receiver, rssi_dbm=heard.rssi_dbm))]

    # -- periodic work ------------------------------------------------------------------------

    def tick(self, t_s: float, wall_s: float) -> tuple[list[AlertIntent], list[Position]]:
        """Signal-lost checks, presence, positions and geofences for every band."""
        alerts: list[AlertIntent] = []
        positions: list[Position] = []
        entities: list[str] = []
        lons: list[float] = []
        lats: list[float] = []
        ts = datetime.fromtimestamp(wall_s, UTC)
        for band in self.bands.values():
            if band.last_seen_s is None:
                continue
            if t_s - band.last_seen_s >= self.config.signal_lost_after_s:
                if not band.lost_alerted:
                    band.lost_alerted = True
                    alerts.append(AlertIntent(
                        Severity.HIGH, band.wearer,
                        f"no advert from {band.wearer}'s band for "
                        f"{self.config.signal_lost_after_s:.0f} s",
                        self._location(band), band.zone,
                        SignalLostDetails(silent_s=round(t_s - band.last_seen_s, 1))))
                continue
            est = self.estimate(band, t_s)
            band.estimate = est
            if est is None:
                continue
            lon, lat = self.projection.to_lonlat(est.x, est.y)
            positions.append(Position(entity=band.wearer, entity_kind=EntityKind.WEARER,
                                      lon=lon, lat=lat, accuracy_m=round(est.accuracy_m, 1),
                                      ts=ts))
            entities.append(band.wearer)
            lons.append(lon)
            lats.append(lat)
        if self.engine is not None and entities:
            by_wearer = {b.wearer: b for b in self.bands.values()}
            for ev in self.engine.check_many(entities, np.array(lons), np.array(lats), wall_s):
                if not ev.alert:
                    continue
                band = by_wearer[ev.entity]
                method = band.estimate.method if band.estimate else "unknown"
                details: GeofenceExitDetails | GeofenceEntryDetails = (
                    GeofenceExitDetails(method=method) if ev.kind.value == "exit"
                    else GeofenceEntryDetails(method=method))
                verb = "left" if details.KIND is AlertKind.GEOFENCE_EXIT else "entered"
                alerts.append(AlertIntent(
                    Severity(ev.severity), band.wearer,
                    f"{band.wearer} {verb} zone {ev.zone}", self._location(band), ev.zone,
                    details))
        return alerts, positions

    def sightings(self, t_s: float, wall_s: float) -> list[Sighting]:
        """Every fresh (band, receiver) smoothed RSSI with the receiver's place and calibration,
        for the hub to fuse with other gateways' receivers (:mod:`hub.fusion`)."""
        out: list[Sighting] = []
        sigma = self.config.rssi_measurement_sigma_db
        for band in self.bands.values():
            for rid, reading in band.readings.items():
                value = reading.kalman.value
                if value is None or t_s - reading.last_s > self.config.reading_max_age_s:
                    continue
                rec = self.receivers[rid]
                out.append(Sighting(
                    entity=band.wearer, receiver=rid, lon=rec.lon, lat=rec.lat,
                    rssi_dbm=round(min(max(value, -150.0), 20.0), 2), rssi_sigma_db=sigma,
                    tx_power_1m_dbm=rec.calibration.tx_power_1m_dbm,
                    path_loss_exponent=rec.calibration.path_loss_exponent,
                    ts=datetime.fromtimestamp(wall_s - (t_s - reading.last_s), UTC)))
        return out

    def fresh_rssi(self, band: _Band, t_s: float) -> dict[str, float]:
        return {rid: r.kalman.value for rid, r in band.readings.items()
                if r.kalman.value is not None and t_s - r.last_s <= self.config.reading_max_age_s}

    def estimate(self, band: _Band, t_s: float) -> Estimate | None:
        fresh = self.fresh_rssi(band, t_s)
        if band.presence is None:
            band.presence = ZonePresence(self.config.presence_hysteresis_db,
                                         self.config.presence_min_hold_s)
        nearest = band.presence.update(fresh, t_s)
        band.zone = self.receivers[nearest].zone if nearest is not None else None
        if band.gnss is not None and t_s - band.gnss_s <= self.config.gnss_max_age_s:
            x, y = self.projection.to_xy(np.array([band.gnss.lon]), np.array([band.gnss.lat]))
            return Estimate(float(x[0]), float(y[0]), float(max(band.gnss.accuracy_m, 1)), "gnss")
        if len(fresh) >= 3:
            return self.trilaterate(fresh)
        if nearest is None:
            return None
        rec = self.receivers[nearest]
        return Estimate(rec.x, rec.y, max(rec.calibration.distance_m(fresh[nearest]), 1.0),
                        "nearest")

    def trilaterate(self, fresh: Mapping[str, float]) -> Estimate:
        sigma_db = self.config.rssi_measurement_sigma_db
        return locate([RangeReading(rec.x, rec.y, rssi, rec.calibration, sigma_db)
                       for rec, rssi in ((self.receivers[r], v) for r, v in fresh.items())])

    def _location(self, band: _Band) -> Location | None:
        est = band.estimate
        if est is None:
            return None
        lon, lat = self.projection.to_lonlat(est.x, est.y)
        return Location(lon=lon, lat=lat, accuracy_m=min(round(est.accuracy_m, 1), 100_000))

    def band_snapshot(self) -> dict[str, dict[str, object]]:
        """Per wearer: last battery, flags, zone and method (for health metrics and tests)."""
        return {b.wearer: {"battery_pct": b.battery_pct, "sos": b.sos, "tamper": b.tamper,
                           "zone": b.zone, "method": b.estimate.method if b.estimate else None}
                for b in self.bands.values()}
