"""Zones and lines pushed by a real hub (API -> retained MQTT) reach a running LiDAR agent fed by
the simulated scanner on a pty: an added zone raises alerts, a removed line stops counting,
nonsense is refused with its key path and changes nothing, and the applied push survives a
restart. Plus the pure validation and state carry-over, without I/O."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.bus import BusConfig
from edge.config import parse_config
from edge.lidar.config import LidarConfig
from edge.lidar.pipeline import PerimeterPipeline, build_rules
from edge.lidar.reload import LidarPush, parse_push
from edge.lidar.service import LidarService
from edge.lidar.simulator import SimulatedScanner
from edge.lidar.tracking import Track
from edge.pushed_config import PushedConfigFile, PushRejectedError
from hub.auth import Role
from tests.edge.lidar.scenarios import config, pt, scene
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

# A pacer in an 8 s loop: absent for the first 2 s (the background learns an empty yard), then
# walks east across the gate line (x = -2), waits two seconds inside the square (1..3, 1..3)
# and walks back west across the gate, disappearing at 7.5 s.
PACER = {"name": "pacer", "waypoints": [
    {"t_s": 2.0, "x_m": -4.5, "y_m": 1.5}, {"t_s": 4.0, "x_m": 2.0, "y_m": 2.0},
    {"t_s": 6.0, "x_m": 2.0, "y_m": 2.0}, {"t_s": 7.5, "x_m": -4.5, "y_m": 1.5}]}
SQUARE = [pt(1.0, 1.0), pt(3.0, 1.0), pt(3.0, 3.0), pt(1.0, 3.0)]
ADDED = {"id": "added", "polygon": SQUARE, "min_dwell_s": 1.0, "severity": "critical",
         "title": "pushed zone"}


# -- pure: validation, key paths, carry-over -------------------------------------------------


def test_push_replaces_only_the_keys_it_names() -> None:
    base = config()
    effective = parse_push(base, {"zones": [ADDED]})
    assert [z.id for z in effective.zones] == ["added"]
    assert [ln.id for ln in effective.lines] == ["gate"]  # absent key: the file's lines
    assert parse_push(base, {"lines": None}).lines == []
    assert parse_push(base, {}).zones == base.zones
    assert effective.scanner == base.scanner and effective.site_origin == base.site_origin


@pytest.mark.parametrize(("raw", "expected"), [
    ({"zones": [{"id": "x", "polygon": SQUARE[:2]}]},
     "config.zones[0] ('x').polygon: List should have at least 3 items"),
    ({"zones": [{**ADDED, "min_dwell_s": -1}]},
     "config.zones[0] ('added').min_dwell_s: Input should be greater than or equal to 0"),
    ({"lines": [{"id": "l", "a": pt(0, 0), "b": pt(0, 0.01)}]},
     "config.lines[0] ('l'): line l: a and b must be at least 0.1 m apart"),
    ({"zonez": []}, "config.zonez: Extra inputs are not permitted"),
    ({"scanner": {"model": "ld19"}}, "config.scanner: Extra inputs are not permitted"),
    ({"zones": [{**ADDED, "id": "gate"}]}, "zone and line ids must be unique; repeated: gate"),
    ({"zones": [{**ADDED, "polygon": [pt(40, 40), pt(41, 40), pt(41, 41)]}]},
     "config.zones[0] ('added'): its nearest point is 56.6 m from the scanner"),
    ({"lines": [{"id": "far", "a": pt(-30, 20), "b": pt(30, 20)}]},
     "config.lines[0] ('far'): its nearest point is 20.0 m from the scanner"),
])
def test_nonsense_is_refused_with_the_key_path(raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(PushRejectedError) as err:
        parse_push(config(), raw)
    assert expected in str(err.value)
    assert str(err.value).endswith("push again (the zones and lines in force stay)")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(raw=st.dictionaries(st.sampled_from(["zones", "lines", "other"]), json_values,
                           max_size=3))
def test_any_json_is_applied_or_refused_with_a_sentence(raw: dict[str, Any]) -> None:
    base = config()
    try:
        effective = parse_push(base, raw)
    except PushRejectedError as err:
        assert str(err).startswith("config") and len(str(err)) > 20
    else:
        assert LidarPush.model_validate(raw).model_fields_set <= {"zones", "lines"}
        assert effective.mount == base.mount


def test_doc_example_push_applies_to_the_doc_config() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "lidar.md").read_text(encoding="utf-8")
    yaml_block = re.findall(r"```yaml\n(.*?)```", doc, re.S)[0]
    (json_block,) = re.findall(r"```json\n(.*?)```", doc, re.S)
    base = parse_config(yaml_block, LidarConfig, "docs/lidar.md config")
    effective = parse_push(base, json.loads(json_block)["config"])
    assert [z.id for z in effective.zones] == ["transformer"]
    assert effective.lines[0].hysteresis_m == 0.3


def _track(tid: str, x: float, y: float) -> Track:
    return Track(id=tid, x_m=x, y_m=y, t_s=0.0, first_t_s=0.0)


def test_swap_keeps_state_of_unchanged_rules_and_resets_moved_ones() -> None:
    cfg = config()
    pipeline = PerimeterPipeline(cfg)
    zone, line = pipeline.zones[0], pipeline.lines[0]
    # yard zone (3..6, 1..4): a track inside since t=0; gate at x=-2: one "in" crossing
    inside = _track("a", 4.0, 2.0)
    zone.update([inside], 0.0)
    line.update([_track("b", -3.0, 0.0)], 0.0)
    line.update([_track("b", -1.0, 0.0)], 0.1)
    assert line.counts["in"] == 1
    same = parse_push(cfg, {"zones": [{"id": "yard", "polygon": [pt(3, 1), pt(6, 1), pt(6, 4),
                                                                  pt(3, 4)],
                                       "min_dwell_s": 0.5}]})
    pipeline.replace_rules(*build_rules(same))
    # unchanged polygon, shorter dwell: the track's entry time carried over, alert at once
    assert [e.entered_t_s for e in pipeline.zones[0].update([inside], 0.6)] == [0.0]
    assert pipeline.line_counts() == {"gate.in": 1, "gate.out": 0}
    moved = parse_push(cfg, {"lines": [{"id": "gate", "a": pt(0, -4), "b": pt(0, 4)}]})
    pipeline.replace_rules(*build_rules(moved))
    assert pipeline.line_counts() == {"gate.in": 1, "gate.out": 0}  # the count follows the id
    # the side state did not: a track now left of the moved line is a first sighting
    assert pipeline.lines[0].update([_track("b", -1.0, 0.0)], 0.2) == []


def test_pushed_config_file_round_trip_and_bad_file(tmp_path: Path) -> None:
    store = PushedConfigFile(tmp_path / "d" / "x.json")
    assert store.load() is None
    store.save(3, {"zones": [ADDED]}, 4)
    assert store.load() == (3, {"zones": [ADDED]}, 4)
    store.save(0, None, 1)
    assert store.load() == (0, None, 1)
    store.path.write_text("{not json", encoding="utf-8")
    assert store.load() is None
    assert not list(store.path.parent.glob("*.tmp"))


# -- end to end: real hub, real broker, simulated scanner ------------------------------------


def _provision(hub: RunningHub, broker: BrokerHarness, device: str, tmp_path: Path) -> BusConfig:
    res = hub.client(Role.INSTALLER).post(
        "/api/v1/devices", json={"id": device, "site": hub.site, "kind": "lidar"})
    assert res.status_code == 201, res.text
    pw = tmp_path / "mqtt-password"
    pw.write_text(res.json()["mqtt_password"], encoding="utf-8")
    return BusConfig(port=broker.port, username=device, password_file=pw,
                     reconnect_min_s=0.05, reconnect_max_s=0.5)


def _push(client: httpx.Client, device: str, body: dict[str, Any]) -> int:
    res = client.post(f"/api/v1/devices/{device}/config", json={"config": body})
    assert res.status_code == 201, res.text
    version: int = res.json()["version"]
    return version


def _answered(client: httpx.Client, device: str, version: int) -> dict[str, Any]:
    """The hub's view of ``version`` once the device has answered it."""
    seen: dict[str, Any] = {}

    def answered() -> bool:
        seen.update(client.get(f"/api/v1/devices/{device}/config").json())
        return bool(seen["version"] == version and seen["status"] != "pending")

    wait_until(answered, 15, message=f"the device's answer to config version {version}")
    return seen


def _zone_alerts(client: httpx.Client, device: str, zone: str) -> int:
    items = client.get("/api/v1/alerts", params={"device": device}).json()["items"]
    return sum(1 for a in items if a["zone"] == zone)


def test_pushed_zone_alerts_removed_line_stops_counting_nonsense_refused(
        broker: BrokerHarness, site: str, tmp_path: Path) -> None:
    hub = start_hub(broker, site, tmp_path)
    device = f"{site}-lidar"
    sim = SimulatedScanner(scene("ld06", walkers=[PACER], loop_s=8.0), tmp_path / "ttyL")
    cfg = config("ld06", site=site, device=device, mqtt=_provision(hub, broker, device, tmp_path),
                 data_dir=tmp_path / "data", health_interval_s=0.5,
                 background={"learn_s": 1.5}, zones=[],
                 scanner={"model": "ld06", "port": str(sim.link), "stall_timeout_s": 0.5})
    sim.start()
    service = LidarService(cfg)
    service.start()
    admin = hub.client(Role.ADMIN)
    try:
        # the file's line counts the pacer; without zones nothing alerts
        wait_until(lambda: service.pipeline.line_counts()["gate.in"] >= 1, 20,
                   message="the pacer counted on the file's gate line")
        assert service.pipeline.events["intrusions"] == 0
        v1 = _push(admin, device, {"zones": [ADDED]})
        assert _answered(admin, device, v1)["status"] == "applied"
        assert [z.id for z in service.pipeline.zones] == ["added"]
        wait_until(lambda: _zone_alerts(admin, device, "added") >= 1, 20,
                   message="an intrusion alert from the pushed zone stored by the hub")

        v2 = _push(admin, device, {"zones": [{**ADDED, "polygon": SQUARE[:2]}], "lines": []})
        refused = _answered(admin, device, v2)
        assert refused["status"] == "rejected"
        assert "config.zones[0] ('added').polygon: List should have at least 3" in \
            refused["error"]
        assert refused["applied_version"] == v1
        assert [z.id for z in service.pipeline.zones] == ["added"]
        assert [ln.id for ln in service.pipeline.lines] == ["gate"]

        # v3 removes the gate and adds a control line 1 m west of it (x = -3)
        control = {"id": "control", "a": pt(-3.0, -4.0), "b": pt(-3.0, 4.0)}
        v3 = _push(admin, device, {"zones": [ADDED], "lines": [control]})
        assert _answered(admin, device, v3)["status"] == "applied"
        intrusions = service.pipeline.events["intrusions"]
        # the pacer walks east across x = -3 and x = -2 and back: only the control line counts
        # (an "in" on the control line means it also walked on over the gate's old place)
        wait_until(lambda: min(service.pipeline.line_counts().values()) >= 1, 25,
                   message="the pacer counted both ways on the pushed control line")
        assert set(service.pipeline.line_counts()) == {"control.in", "control.out"}
        wait_until(lambda: service.pipeline.events["intrusions"] > intrusions, 20,
                   message="the pushed zone still alerting")
        metrics = service.health_fields()["metrics"]
        assert (metrics["config_version"], metrics["config_applied"],
                metrics["config_rejected"]) == (v3, 2, 1)
    finally:
        service.stop()
        sim.stop()
        stop_hub(broker, hub)


def test_applied_push_survives_a_restart_and_redelivery_is_ignored(
        broker: BrokerHarness, site: str, tmp_path: Path) -> None:
    hub = start_hub(broker, site, tmp_path)
    device = f"{site}-lidar"
    cfg = config("ld06", site=site, device=device, mqtt=_provision(hub, broker, device, tmp_path),
                 data_dir=tmp_path / "data", scanner={"port": str(tmp_path / "no-port")})
    admin = hub.client(Role.ADMIN)
    service = LidarService(cfg)
    service.start()
    try:
        v1 = _push(admin, device, {"zones": [ADDED], "lines": []})
        assert _answered(admin, device, v1)["status"] == "applied"
    finally:
        service.stop()
    again = LidarService(cfg)
    # in force from the file under data_dir before any connection or scan
    assert [z.id for z in again.pipeline.zones] == ["added"]
    assert again.pipeline.lines == []
    assert again.runtime.config_version == v1
    again.start()
    try:
        wait_until(lambda: again.runtime.counters["config_stale"] >= 1, 30,
                   message="the retained push re-delivered and ignored")
        wait_until(lambda: admin.get(f"/api/v1/devices/{device}").json()[
            "config_version_applied"] == v1, 10, message="the state carries the version")
        assert again.runtime.counters["config_applied"] == 0
    finally:
        again.stop()
        stop_hub(broker, hub)


def test_persisted_push_that_no_longer_fits_the_file_is_re_judged(tmp_path: Path) -> None:
    cfg = config(data_dir=tmp_path, scanner={"port": str(tmp_path / "no-port")})
    PushedConfigFile(tmp_path / "lidar-1-pushed-config.json").save(
        2, {"zones": [{**ADDED, "id": "gate"}]}, 0)
    service = LidarService(cfg)
    try:
        assert [z.id for z in service.pipeline.zones] == ["yard"]  # the file's zones
        assert service.runtime.config_version is None
        assert service.runtime.counters["config_restore_failed"] == 1
        assert service.reloader.applied_version == 0
    finally:
        service.runtime.outbox.close()
