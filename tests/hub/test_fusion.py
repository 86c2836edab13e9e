"""Multi-gateway fusion: the pure window logic, the store's supersede rule, and two real wristband
gateways (two receivers each) whose sightings the hub fuses into positions on a walk with known
truth, through the real broker and the REST API."""

from __future__ import annotations

import math
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from edge.agent import AgentRuntime
from edge.bus import BusConfig
from edge.geofence import LocalProjection
from edge.positioning import Calibration
from edge.protocol import DeviceKind, EntityKind, Position, Sighting
from edge.wristband.config import (
    BandConfig,
    ReceiverConfig,
    SimulatedWearer,
    SimulationConfig,
    WristbandConfig,
)
from edge.wristband.sim import SimulatedAirwaves
from edge.wristband.tracker import WristbandTracker
from hub.auth import Role
from hub.fusion import FUSION_DEVICE, SightingFusion
from hub.schema import positions
from hub.store import Store
from tests.hub.conftest import RunningHub
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

ORIGIN = (114.0570, 22.5430)
PROJ = LocalProjection(*ORIGIN)
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CAL = Calibration(-59.0, 2.0)


def _sighting(
    receiver: str,
    x: float,
    y: float,
    truth: tuple[float, float],
    dt_s: float,
    *,
    entity: str = "w-1",
    cal: Calibration = CAL,
) -> Sighting:
    lon, lat = PROJ.to_lonlat(x, y)
    rssi = cal.rssi_dbm(math.hypot(truth[0] - x, truth[1] - y))
    return Sighting(
        entity=entity,
        receiver=receiver,
        lon=lon,
        lat=lat,
        rssi_dbm=rssi,
        rssi_sigma_db=3.0,
        tx_power_1m_dbm=cal.tx_power_1m_dbm,
        path_loss_exponent=cal.path_loss_exponent,
        ts=T0 + timedelta(seconds=dt_s),
    )


def _xy(lon: float, lat: float) -> tuple[float, float]:
    x, y = PROJ.to_xy(np.array([lon]), np.array([lat]))
    return float(x[0]), float(y[0])


# -- the pure fusion window ----------------------------------------------------------------------


def test_three_receivers_across_two_gateways_are_fused() -> None:
    fusion = SightingFusion()
    truth = (30.0, 25.0)
    assert (
        fusion.fuse(
            fusion.add(
                "s", "gw-a", [_sighting("rx-1", 0, 0, truth, 0), _sighting("rx-2", 0, 70, truth, 0)]
            )
        )
        == []
    )
    assert fusion.stats["too_few_receivers"] == 1
    out = fusion.fuse(fusion.add("s", "gw-b", [_sighting("rx-3", 100, 0, truth, 0.5)]))
    assert len(out) == 1
    fused = out[0]
    assert (fused.site, fused.receivers, fused.gateways) == ("s", 3, 2)
    assert fused.position.entity_kind is EntityKind.WEARER
    assert fused.position.ts == T0 + timedelta(seconds=0.5)
    x, y = _xy(fused.position.lon, fused.position.lat)
    assert math.hypot(x - truth[0], y - truth[1]) < 0.5
    assert fused.position.accuracy_m is not None and fused.position.accuracy_m >= 0.5


def test_same_receiver_id_on_two_gateways_counts_twice_but_one_receiver_does_not() -> None:
    fusion = SightingFusion()
    truth = (50.0, 35.0)
    # rx-1 repeated by one gateway is still one receiver
    keys = fusion.add(
        "s",
        "gw-a",
        [
            _sighting("rx-1", 0, 0, truth, 0),
            _sighting("rx-1", 0, 0, truth, 1),
            _sighting("rx-2", 0, 70, truth, 1),
        ],
    )
    assert fusion.fuse(keys) == []
    # "rx-1" of another gateway is another receiver: ids are only unique per gateway
    out = fusion.fuse(fusion.add("s", "gw-b", [_sighting("rx-1", 100, 35, truth, 1)]))
    assert [f.receivers for f in out] == [3]


def test_stale_sightings_leave_the_window() -> None:
    fusion = SightingFusion(window_s=5)
    truth = (40.0, 30.0)
    fusion.add("s", "gw-a", [_sighting("rx-1", 0, 0, truth, 0), _sighting("rx-2", 0, 70, truth, 0)])
    # 6 s later: the first two are out of the window, so two receivers are not enough
    assert (
        fusion.fuse(
            fusion.add(
                "s",
                "gw-b",
                [_sighting("rx-3", 100, 0, truth, 6), _sighting("rx-4", 100, 70, truth, 6)],
            )
        )
        == []
    )
    out = fusion.fuse(fusion.add("s", "gw-a", [_sighting("rx-1", 0, 0, truth, 7)]))
    assert [f.receivers for f in out] == [3]


def test_out_of_order_sighting_is_ignored_and_output_rate_limited() -> None:
    fusion = SightingFusion(min_interval_s=2)
    truth = (40.0, 30.0)
    anchors = {"rx-1": (0, 0), "rx-2": (0, 70), "rx-3": (100, 0)}
    first = fusion.fuse(
        fusion.add("s", "gw", [_sighting(r, *xy, truth, 10) for r, xy in anchors.items()])
    )
    assert len(first) == 1
    assert fusion.add("s", "gw", [_sighting("rx-1", 0, 0, truth, 9)]) == []
    assert fusion.stats["sightings_out_of_order"] == 1
    assert fusion.fuse(fusion.add("s", "gw", [_sighting("rx-1", 0, 0, truth, 11)])) == []
    assert fusion.stats["rate_limited"] == 1
    assert len(fusion.fuse(fusion.add("s", "gw", [_sighting("rx-1", 0, 0, truth, 12)]))) == 1
    # nothing new: nothing to fuse
    assert fusion.fuse([("s", "w-1")]) == []


def test_each_gateway_batch_refreshes_the_fix_even_with_equal_timestamps() -> None:
    fusion = SightingFusion()
    truth = (40.0, 30.0)
    a = [_sighting("rx-1", 0, 0, truth, 10), _sighting("rx-2", 0, 70, truth, 10)]
    b = [_sighting("rx-3", 100, 0, truth, 10), _sighting("rx-4", 100, 70, truth, 10)]
    fusion.add("s", "gw-a", a)
    assert fusion.fuse(fusion.add("s", "gw-b", b[:1]))[0].receivers == 3
    assert fusion.fuse(fusion.add("s", "gw-b", b[1:]))[0].receivers == 4


def test_sites_are_separate_and_band_count_is_bounded() -> None:
    fusion = SightingFusion(max_bands=2)
    truth = (40.0, 30.0)
    three = [("rx-1", 0, 0), ("rx-2", 0, 70), ("rx-3", 100, 0)]
    fusion.add("s1", "gw", [_sighting(three[0][0], 0, 0, truth, 0)])
    fusion.add("s2", "gw", [_sighting(r, x, y, truth, 0) for r, x, y in three[1:]])
    assert fusion.fuse([("s1", "w-1"), ("s2", "w-1")]) == []
    fusion.add("s3", "gw", [_sighting("rx-1", 0, 0, truth, 0)])
    assert len(fusion) == 2
    assert fusion.stats["bands_evicted"] == 1


def test_per_receiver_calibration_is_used() -> None:
    fusion = SightingFusion()
    truth = (20.0, 50.0)
    cals = [Calibration(-59, 2.0), Calibration(-66, 2.7), Calibration(-52, 3.2)]
    anchors = [(0, 0), (0, 70), (100, 35)]
    out = fusion.fuse(
        fusion.add(
            "s",
            "gw",
            [
                _sighting(f"rx-{i}", x, y, truth, 0, cal=c)
                for i, ((x, y), c) in enumerate(zip(anchors, cals, strict=True))
            ],
        )
    )
    x, y = _xy(out[0].position.lon, out[0].position.lat)
    assert math.hypot(x - truth[0], y - truth[1]) < 0.5


def test_bad_parameters_refused() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        SightingFusion(min_receivers=2)
    with pytest.raises(ValueError, match="positive"):
        SightingFusion(window_s=0)


# -- the store's supersede rule ------------------------------------------------------------------


def _pos(lon: float, dt_s: float, accuracy_m: float | None) -> Position:
    return Position(
        entity="w-1",
        entity_kind=EntityKind.WEARER,
        lon=lon,
        lat=22.5,
        accuracy_m=accuracy_m,
        ts=T0 + timedelta(seconds=dt_s),
    )


def test_fused_position_supersedes_a_worse_newer_guess_only(tmp_path: Path) -> None:
    # The hub's clock at T0: positions further back would be too old to become "latest".
    store = Store(f"sqlite:///{tmp_path}/hub.sqlite", clock=lambda: T0)
    try:

        def latest() -> tuple[str, float]:
            with store.engine.connect() as conn:
                row = conn.execute(
                    select(positions.c.device, positions.c.lon)
                    .order_by(positions.c.seq.desc())
                    .limit(1)
                ).one()
                from hub.schema import latest_positions as lp

                cur = conn.execute(select(lp.c.device, lp.c.lon)).one()
                assert row is not None
                return str(cur.device), float(cur.lon)

        def fused(lon: float, dt_s: float, acc: float) -> None:
            store.write_fused_positions(
                [("s", _pos(lon, dt_s, acc))], device=FUSION_DEVICE, supersede_within_s=8
            )

        fused(114.0, 0, 10)
        assert latest() == (FUSION_DEVICE, 114.0)
        # a gateway's coarse guess one second later: the fused fix 0.5 s later still wins
        store.write_fused_positions(
            [("s", _pos(114.1, 1, 40))], device="gw-a", supersede_within_s=0
        )
        assert latest() == ("gw-a", 114.1)
        fused(114.2, 0.5, 10)
        assert latest() == (FUSION_DEVICE, 114.2)
        # a GNSS fix (better) a moment later is not hidden by an older fused one
        store.write_fused_positions([("s", _pos(114.3, 3, 4))], device="gw-a", supersede_within_s=0)
        fused(114.4, 2.5, 10)
        assert latest() == ("gw-a", 114.3)
        # ... nor is anything newer than the window
        store.write_fused_positions(
            [("s", _pos(114.5, 20, 50))], device="gw-a", supersede_within_s=0
        )
        fused(114.6, 5, 10)
        assert latest() == ("gw-a", 114.5)
        # a newer fused fix always wins; history keeps every row
        fused(114.7, 21, 30)
        assert latest() == (FUSION_DEVICE, 114.7)
        with store.engine.connect() as conn:
            assert len(conn.execute(select(positions.c.seq)).all()) == 8
    finally:
        store.close()


# -- end to end: two gateways, the real broker, the hub, the API ---------------------------------

# 120 x 80 m; gateway A owns the west receivers, gateway B the east ones.
RECEIVERS = {
    "gw-a": {"rx-sw": (0, 0), "rx-nw": (0, 80)},
    "gw-b": {"rx-se": (120, 0), "rx-ne": (120, 80)},
}
ROUTE = [(30, 20), (90, 20), (90, 60), (30, 60)]
BAND = 0x2001
WALK_S = 170.0  # one lap of the 200 m route
TICK_S = 2.0


def _gateway_config(
    site: str, device: str, mqtt: BusConfig, data_dir: Path, seed: int
) -> WristbandConfig:
    return WristbandConfig(
        site=site,
        device=device,
        mqtt=mqtt,
        data_dir=data_dir,
        health_interval_s=60,
        receivers=[
            ReceiverConfig(
                id=rid,
                lon=PROJ.to_lonlat(x, y)[0],
                lat=PROJ.to_lonlat(x, y)[1],
                tx_power_1m_dbm=-59,
                path_loss_exponent=2.0,
            )
            for rid, (x, y) in RECEIVERS[device].items()
        ],
        bands=[BandConfig(band_id=BAND, wearer="walker")],
        simulation=SimulationConfig(
            wearers=[
                SimulatedWearer(
                    band_id=BAND, speed_mps=1.2, route=[PROJ.to_lonlat(x, y) for x, y in ROUTE]
                )
            ],
            advert_interval_s=0.5,
            rssi_sigma_db=3.0,
            sensitivity_dbm=-110,
            seed=seed,
        ),
        position_interval_s=TICK_S,
        rssi_measurement_sigma_db=3.0,
    )


def _provision(hub: RunningHub, broker: BrokerHarness, tmp_path: Path, device: str) -> BusConfig:
    creds = (
        hub.client(Role.INSTALLER)
        .post("/api/v1/devices", json={"id": device, "site": hub.site, "kind": "wristband"})
        .json()
    )
    pw = tmp_path / f"{device}.pw"
    pw.write_text(creds["mqtt_password"])
    return BusConfig(port=broker.port, username=device, password_file=pw)


def _wait_until_publishing_allowed(hub: RunningHub, runtimes: list[AgentRuntime]) -> None:
    """The API's provisioning reloads the broker asynchronously, and a QoS 0 publish the ACL
    does not (yet) allow is dropped without a word: wait until the hub has each gateway's state."""

    def online() -> bool:
        known = {r["device"] for r in hub.service.store.device_states()}
        missing = [r for r in runtimes if r.device not in known]
        for runtime in missing:
            runtime.publish_state()
        return not missing

    wait_until(online, timeout_s=30, interval_s=0.5, message="both gateways' state at the hub")


def _errors_m(samples: list[tuple[float, float, float]], air: SimulatedAirwaves) -> list[float]:
    """(t, x, y) estimates -> distance to the truth at t."""
    out = []
    for t, x, y in samples:
        tx, ty = _xy(*air.truth(BAND, t))
        out.append(math.hypot(x - tx, y - ty))
    return out


Gateway = tuple[WristbandConfig, SimulatedAirwaves, WristbandTracker, AgentRuntime]


def _received_at_least(hub: RunningHub, n: int) -> bool:
    return hub.service.ingest.stats.received >= n


def _walk(
    hub: RunningHub, gateways: dict[str, Gateway], wall0: float
) -> dict[str, list[tuple[float, float, float]]]:
    """Step the walk with a fake clock; each gateway publishes what its own pipeline makes.
    Returns each gateway's own estimates (t, x, y)."""
    alone: dict[str, list[tuple[float, float, float]]] = {d: [] for d in gateways}
    expected = hub.service.ingest.stats.received
    t = 0.0
    next_tick = TICK_S
    while t <= WALK_S:
        tick = t >= next_tick
        for device, (_, air, tracker, runtime) in gateways.items():
            for heard in air.adverts_at(t, t):
                tracker.on_advert(heard)
            if tick:
                _, pos = tracker.tick(t, wall0 + t)
                runtime.send_positions(pos)
                runtime.send_sightings(tracker.sightings(t, wall0 + t))
                est = tracker.bands[BAND].estimate
                assert est is not None and est.method == "nearest"  # two receivers only
                alone[device].append((t, *_xy(*tracker.projection.to_lonlat(est.x, est.y))))
        if tick:
            next_tick += TICK_S
            # Real gateways publish as they go; a burst of the whole walk would reach the hub
            # one gateway after the other (see docs/wristband.md, "Fusion").
            expected += 2 * len(gateways)
            wait_until(
                partial(_received_at_least, hub, expected),
                timeout_s=30,
                message="this tick's positions and sightings at the hub",
            )
        t += 0.5
    return alone


def test_two_gateways_two_receivers_each_fused_at_the_hub(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    keys = {BAND: (os.urandom(16),)}
    wall0 = time.time() - WALK_S - 5  # the walk happened just now, in gateway wall time
    gateways: dict[str, Gateway] = {}
    for seed, device in enumerate(RECEIVERS, start=1):
        cfg = _gateway_config(
            hub.site, device, _provision(hub, broker, tmp_path, device), tmp_path / device, seed
        )
        gateways[device] = (
            cfg,
            SimulatedAirwaves(cfg, keys),
            WristbandTracker(cfg, keys),
            AgentRuntime(cfg, DeviceKind.WRISTBAND),
        )
    try:
        for _, _, _, runtime in gateways.values():
            runtime.start()
            assert runtime.bus.wait_connected(30)
        _wait_until_publishing_allowed(hub, [g[3] for g in gateways.values()])
        alone = _walk(hub, gateways, wall0)
        ticks = len(alone["gw-a"])
        # every tick after the first few has 4 receivers in the window: one fused fix per tick
        wait_until(
            lambda: hub.service.fusion.stats["fused"] >= ticks - 2,
            timeout_s=20,
            message="fused positions for the walk",
        )
        wait_until(
            lambda: hub.service.ingest.stats.stored_positions >= 2 * ticks,
            timeout_s=30,
            message="the gateways' own positions",
        )
    finally:
        for _, _, _, runtime in gateways.values():
            runtime.stop()

    officer = hub.client(Role.OFFICER)

    def walker_history() -> list[dict[str, Any]]:
        history: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"entity": "walker", "limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = officer.get("/api/v1/positions/history", params=params).json()
            history += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return history

    # Fusion counts a fix before the batch's fused rows are committed: wait for the rows.
    read: list[list[dict[str, Any]]] = []

    def fused_stored() -> bool:
        read.append(walker_history())
        return sum(p["device"] == FUSION_DEVICE for p in read[-1]) >= ticks - 2

    wait_until(fused_stored, message="the fused positions stored")
    history = read[-1]
    fused_rows = [p for p in history if p["device"] == FUSION_DEVICE]
    assert len(fused_rows) >= ticks - 2
    assert {p["device"] for p in history} == {"gw-a", "gw-b", FUSION_DEVICE}
    air = gateways["gw-a"][1]
    fused = []
    for p in fused_rows:
        t_s = datetime.fromisoformat(p["ts"]).timestamp() - wall0
        fused.append((t_s, *_xy(p["lon"], p["lat"])))
    err_fused = _errors_m(fused, air)
    err_a = _errors_m(alone["gw-a"], air)
    err_b = _errors_m(alone["gw-b"], air)
    report = {
        name: (len(e), statistics.median(e), float(np.percentile(e, 90)))
        for name, e in (("fused", err_fused), ("gw-a alone", err_a), ("gw-b alone", err_b))
    }
    print("\nfusion error on the walk (samples, median m, p90 m):", report)
    assert report["fused"][1] < 0.5 * min(report["gw-a alone"][1], report["gw-b alone"][1])
    assert report["fused"][1] < 15

    latest = officer.get("/api/v1/positions/latest", params={"site": hub.site}).json()["items"]
    [walker] = [p for p in latest if p["entity"] == "walker"]
    # the gateways' last guesses are "nearest receiver" ones, coarser than the fused fix
    assert walker["device"] == FUSION_DEVICE
    assert walker["entity_kind"] == "wearer"
