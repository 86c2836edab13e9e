"""Zones and homography pushed by a real hub (API -> retained MQTT) reach a running camera agent
that watches a slice of the real pedestrian video through GStreamer and HOG: an added zone
raises alerts (with map locations from the pushed homography), nonsense is refused with its key
path and changes nothing, a removed zone raises nothing more, and the applied push survives a
restart. Plus the pure validation and the zone-state carry-over, without I/O."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.bus import BusConfig
from edge.camera.config import CameraConfig
from edge.camera.reload import CameraPush, parse_push
from edge.camera.service import CameraService
from edge.camera.zones import ZoneEngine
from edge.config import parse_config
from edge.pushed_config import PushedConfigFile, PushRejectedError
from edge.vision.boxes import Box
from edge.vision.ingest import FileSource, IngestConfig, TestPatternSource
from edge.vision.tracker import Track
from hub.auth import Role
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

W, H = 384, 288
# the footpath where people walk in vtest.avi, at half resolution
WALKWAY: list[list[float]] = [[0, 110], [384, 110], [384, 288], [0, 288]]
HOMOGRAPHY = {"points": [
    {"px": [0, 75], "lon": 114.0565, "lat": 22.5433},
    {"px": [383, 75], "lon": 114.0570, "lat": 22.5433},
    {"px": [383, 287], "lon": 114.0569, "lat": 22.5430},
    {"px": [0, 287], "lon": 114.0566, "lat": 22.5430}]}
LINE = {"type": "line", "id": "footpath", "a": [100, 170], "b": [100, 70], "cooldown_s": 0}


def intrusion(zone_id: str, polygon: list[list[float]] = WALKWAY, **extra: Any) -> dict[str, Any]:
    return {"type": "intrusion", "id": zone_id, "polygon": polygon, "cooldown_s": 0, **extra}


def base_config(tmp_path: Path, **extra: Any) -> CameraConfig:
    values: dict[str, Any] = {
        "site": "test", "device": "cam-1", "data_dir": tmp_path,
        "source": {"type": "test"}, "ingest": {"width_px": W, "height_px": H},
        # these tests are about pushed zones, not detection: the cheap detector, whatever the
        # default is on this machine (NanoDet-m where set-up has built it)
        "detector": {"type": "hog"}, "zones": [LINE]}
    values.update(extra)
    return CameraConfig.model_validate(values)


# -- pure: validation, key paths, carry-over -------------------------------------------------


def test_push_replaces_only_the_keys_it_names(tmp_path: Path) -> None:
    base = base_config(tmp_path, homography=HOMOGRAPHY)
    effective = parse_push(base, {"zones": [intrusion("walkway")]})
    assert [z.id for z in effective.zones] == ["walkway"]
    assert effective.homography == base.homography  # absent key: the file's value
    assert parse_push(base, {"homography": None}).homography is None
    assert parse_push(base, {"zones": None}).zones == []
    assert parse_push(base, {}) == base
    assert effective.source == base.source and effective.detector == base.detector


@pytest.mark.parametrize(("raw", "expected"), [
    ({"zones": [intrusion("walkway", [[0, 0], [500, 0], [0, 100]])]},
     "config.zones[0] ('walkway').polygon[1]: (500, 0) is outside the 384x288 frame"),
    ({"zones": [{**LINE, "b": [100, -1]}]},
     "config.zones[0] ('footpath').b: (100, -1) is outside the 384x288 frame"),
    ({"zones": [intrusion("walkway", [[0, 0], [10, 0]])]},
     "config.zones[0] ('walkway').polygon: List should have at least 3 items"),
    ({"zones": [intrusion("flat", [[0, 0], [10, 10], [20, 20]])]},
     "config.zones[0] ('flat'): zone 'flat': polygon has no area"),
    ({"zones": [{**LINE, "cooldown_s": -5}]},
     "config.zones[0] ('footpath').cooldown_s: Input should be greater than or equal to 0"),
    ({"zones": [{**LINE, "type": "fence"}]}, "config.zones[0] ('footpath'): Input tag 'fence'"),
    ({"zones": [LINE, LINE]}, "config.zones[1].id: zone ids must be unique, 'footpath' is"),
    ({"zones": [intrusion("bad id!")]}, "config.zones[0] ('bad id!').id: String should match"),
    ({"detector": {"type": "hog"}}, "config.detector: Extra inputs are not permitted"),
    ({"homography": {"points": HOMOGRAPHY["points"][:3]}},
     "config.homography.points: List should have at least 4 items"),
    ({"homography": {"points": [{"px": [0, 0], "lon": 114.0, "lat": 22.0},
                                {"px": [10, 10], "lon": 114.001, "lat": 22.001},
                                {"px": [20, 20], "lon": 114.002, "lat": 22.002},
                                {"px": [30, 30], "lon": 114.003, "lat": 22.003}]}},
     "config.homography: ground points are degenerate"),
    ({"homography": {"points": [{**HOMOGRAPHY["points"][0], "px": [900, 75]},
                                *HOMOGRAPHY["points"][1:]]}},
     "config.homography.points[0].px: (900, 75) is outside the 384x288 frame"),
])
def test_nonsense_is_refused_with_the_key_path(tmp_path: Path, raw: dict[str, Any],
                                               expected: str) -> None:
    with pytest.raises(PushRejectedError) as err:
        parse_push(base_config(tmp_path), raw)
    assert expected in str(err.value)
    assert str(err.value).endswith("push again (the zones in force stay)")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(raw=st.dictionaries(st.sampled_from(["zones", "homography", "other"]), json_values,
                           max_size=3))
def test_any_json_is_applied_or_refused_with_a_sentence(raw: dict[str, Any]) -> None:
    base = base_config(Path("/nonexistent"))
    try:
        effective = parse_push(base, raw)
    except PushRejectedError as err:
        assert str(err).startswith("config") and len(str(err)) > 20
    else:
        assert CameraPush.model_validate(raw).model_fields_set <= {"zones", "homography"}
        assert effective.ingest == base.ingest


def test_doc_example_push_applies_to_the_doc_config() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "camera.md").read_text(encoding="utf-8")
    (yaml_block,) = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    (json_block,) = re.findall(r"```json\n(.*?)```", doc, re.S)
    base = parse_config(yaml_block, CameraConfig, "docs/camera.md config")
    effective = parse_push(base, json.loads(json_block)["config"])
    assert [z.id for z in effective.zones] == ["gate", "yard", "door"]
    assert effective.homography is not None


def _track(tid: int, foot_x: float, foot_y: float) -> Track:
    box: Box = (foot_x - 10, foot_y - 60, foot_x + 10, foot_y)
    return Track(id=tid, box=box, label="person", score=1.0, first_ts=0.0, last_ts=0.0)


def test_swap_keeps_state_of_unchanged_zones_and_resets_moved_ones(tmp_path: Path) -> None:
    cfg = parse_push(base_config(tmp_path), {"zones": [LINE, intrusion("walkway")]})
    old = ZoneEngine(cfg.zones)
    old.update([_track(1, 120, 150)], 0.0)  # right of the line, inside the walkway
    assert [e.zone for e in old.update([_track(1, 80, 150)], 0.1)] == ["footpath", "walkway"]
    # same line, other cool-down; walkway moved (its state must not carry over)
    pushed = parse_push(cfg, {"zones": [{**LINE, "cooldown_s": 30},
                                        intrusion("walkway", [[0, 100], [384, 100],
                                                              [384, 288], [0, 288]])]})
    new = ZoneEngine(pushed.zones)
    new.carry_over(old)
    assert new.counts["footpath"]["right_to_left"] == 1
    assert new.counts["walkway"]["intrusions"] == 1
    # walking back: the line crossing is seen (side carried) but its new cool-down holds it
    assert new.update([_track(1, 120, 150)], 0.2) == []
    assert new.counts["footpath"]["left_to_right"] == 1
    assert new.counts["footpath"]["suppressed_by_cooldown"] == 1
    # the moved walkway started afresh: frames-inside counted from 1 again, so its second
    # frame inside alerts again (carried over, the count would be past min_frames_inside)
    assert [e.zone for e in new.update([_track(1, 120, 150)], 0.3)] == ["walkway"]


def test_pushed_config_file_round_trip_and_bad_file(tmp_path: Path) -> None:
    store = PushedConfigFile(tmp_path / "d" / "x.json")
    assert store.load() is None
    store.save(3, {"zones": [LINE]}, 4)
    assert store.load() == (3, {"zones": [LINE]}, 4)
    store.path.write_text('{"version": 1}', encoding="utf-8")
    assert store.load() is None
    assert not list(store.path.parent.glob("*.tmp"))


# -- end to end: real hub, real broker, GStreamer, HOG on real video -------------------------


@pytest.fixture(scope="module")
def vtest_slice(vtest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frames 100-399 of vtest.avi at half resolution, as a 10 fps MJPEG AVI (30 s)."""
    path = tmp_path_factory.mktemp("video") / "vtest-slice.avi"
    cap = cv2.VideoCapture(str(vtest))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (W, H))
    try:
        for i in range(400):
            ok, frame = cap.read()
            assert ok, f"vtest.avi ended at frame {i}"
            if i >= 100:
                writer.write(cv2.resize(frame, (W, H), interpolation=cv2.INTER_AREA))
    finally:
        writer.release()
        cap.release()
    return path


def _provision(hub: RunningHub, broker: BrokerHarness, device: str,
               tmp_path: Path) -> BusConfig:
    res = hub.client(Role.INSTALLER).post(
        "/api/v1/devices", json={"id": device, "site": hub.site, "kind": "camera"})
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
    seen: dict[str, Any] = {}

    def answered() -> bool:
        seen.update(client.get(f"/api/v1/devices/{device}/config").json())
        return bool(seen["version"] == version and seen["status"] != "pending")

    wait_until(answered, 15, message=f"the device's answer to config version {version}")
    return seen


def _alerts(client: httpx.Client, device: str, zone: str) -> list[dict[str, Any]]:
    items = client.get("/api/v1/alerts", params={"device": device}).json()["items"]
    return [a for a in items if a["zone"] == zone]


@pytest.mark.gstreamer
def test_pushed_zone_alerts_nonsense_refused_removed_zone_silent(
        broker: BrokerHarness, site: str, tmp_path: Path, vtest_slice: Path) -> None:
    hub = start_hub(broker, site, tmp_path)
    device = f"{site}-cam"
    config = base_config(tmp_path / "edge", site=site, device=device,
                         mqtt=_provision(hub, broker, device, tmp_path), zones=[],
                         source=FileSource(path=vtest_slice, live=True),
                         ingest=IngestConfig(width_px=W, height_px=H, policy="all"))
    service = CameraService(config)
    admin = hub.client(Role.ADMIN)
    service.start()
    try:
        wait_until(lambda: service.source.counters["frames"] >= 5, 20, message="frames")
        assert service.events == []
        v1 = _push(admin, device, {"zones": [intrusion("walkway")], "homography": HOMOGRAPHY})
        assert _answered(admin, device, v1)["status"] == "applied"
        wait_until(lambda: _alerts(admin, device, "walkway"), 20,
                   message="an intrusion alert from the pushed zone stored by the hub")
        alert = _alerts(admin, device, "walkway")[0]
        assert alert["kind"] == "intrusion" and alert["has_evidence"]
        assert 114.056 < alert["lon"] < 114.058  # located through the pushed homography

        v2 = _push(admin, device, {"zones": [intrusion("walkway", [[0, 110], [900, 110],
                                                                    [384, 288]])]})
        refused = _answered(admin, device, v2)
        assert refused["status"] == "rejected"
        assert refused["error"].startswith(
            "config.zones[0] ('walkway').polygon[1]: (900, 110) is outside the 384x288 frame")
        assert refused["applied_version"] == v1
        assert [z.id for z in service.processor.zones.zones] == ["walkway"]
        assert service.processor.homography is not None

        # v3 removes the walkway and adds the same polygon as "control": people keep walking
        # (control alerts) but the removed zone raises nothing more
        v3 = _push(admin, device, {"zones": [intrusion("control")], "homography": None})
        assert _answered(admin, device, v3)["status"] == "applied"
        walkway_events = sum(1 for e in service.events if e.zone == "walkway")
        wait_until(lambda: sum(1 for e in service.events if e.zone == "control") >= 2, 20,
                   message="people alerting in the control zone")
        frames = service.source.counters["frames"]
        wait_until(lambda: service.source.counters["frames"] >= frames + 20, 30,
                   message="more frames")
        assert sum(1 for e in service.events if e.zone == "walkway") == walkway_events
        assert service.config.homography is None
        metrics = service.health_fields()["metrics"]
        assert (metrics["config_version"], metrics["config_applied"],
                metrics["config_rejected"]) == (v3, 2, 1)
    finally:
        service.stop()
        stop_hub(broker, hub)


@pytest.mark.gstreamer
def test_applied_push_survives_a_restart_and_redelivery_is_ignored(
        broker: BrokerHarness, site: str, tmp_path: Path) -> None:
    hub = start_hub(broker, site, tmp_path)
    device = f"{site}-cam"
    config = base_config(tmp_path / "edge", site=site, device=device,
                         mqtt=_provision(hub, broker, device, tmp_path),
                         source=TestPatternSource(fps=10))
    admin = hub.client(Role.ADMIN)
    service = CameraService(config)
    service.start()
    try:
        v1 = _push(admin, device, {"zones": [intrusion("walkway")], "homography": HOMOGRAPHY})
        assert _answered(admin, device, v1)["status"] == "applied"
    finally:
        service.stop()
    again = CameraService(config)
    # in force from the file under data_dir before any connection or frame
    assert [z.id for z in again.processor.zones.zones] == ["walkway"]
    assert again.processor.homography is not None
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


def test_persisted_push_that_no_longer_fits_the_frame_is_re_judged(tmp_path: Path) -> None:
    # pushed for a 640x480 stream; the file now says 384x288
    PushedConfigFile(tmp_path / "cam-1-pushed-config.json").save(
        2, {"zones": [intrusion("big", [[0, 0], [600, 0], [600, 400]])]}, 0)
    service = CameraService(base_config(tmp_path))
    try:
        assert [z.id for z in service.processor.zones.zones] == ["footpath"]  # the file's
        assert service.runtime.config_version is None
        assert service.runtime.counters["config_restore_failed"] == 1
    finally:
        service.runtime.outbox.close()
        service.processor.close()
