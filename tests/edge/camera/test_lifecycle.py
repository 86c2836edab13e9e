"""The camera agent's life as an operator sees it, with real GStreamer and a real Mosquitto:
what it logs at the default level (started, detector and why, stream connected, broker
connected and lost, alerts pending), the bounded wait for pending alerts at the end of a file,
and ``--validate-config`` refusing a file source that is not there."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import yaml

from edge.camera.config import CameraConfig
from edge.camera.detectors.default import choose_default
from edge.camera.models import models_dir
from edge.camera.service import CameraService
from edge.cli import main
from edge.outbox import Outbox
from edge.protocol import DeviceKind
from edge.vision.ingest import IngestConfig, TestPatternSource
from tests.edge.camera.clips import standing_person_clip
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

pytestmark = pytest.mark.gstreamer
REPO = Path(__file__).resolve().parents[3]
LIFECYCLE = "edge.camera.lifecycle"


def _write_clip(path: Path, vtest: Path, frames: int) -> Path:
    """A short real clip (vtest crops, MJPEG in AVI: PyPI OpenCV writes no H.264)."""
    clip = standing_person_clip(vtest, frames)
    h, w = clip[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (w, h))
    try:
        for frame in clip:
            writer.write(frame)
    finally:
        writer.release()
    return path


def test_at_the_end_of_a_file_the_agent_waits_bounded_and_says_what_it_leaves(
        own_broker: BrokerHarness, site: str, vtest: Path, tmp_path: Path) -> None:
    device = f"{site}-cam"
    mqtt = own_broker.add_device(site, DeviceKind.CAMERA, device)
    own_broker.stop()  # the broker is down for the agent's whole life
    clip = _write_clip(tmp_path / "clip.avi", vtest, 20)
    config = {
        "site": site, "device": device, "data_dir": str(tmp_path / "edge"),
        "mqtt": mqtt.model_dump(mode="json"), "end_of_file_wait_s": 1.0,
        "source": {"type": "file", "path": str(clip)},
        "ingest": {"width_px": 384, "height_px": 288, "policy": "all"},
        "zones": [{"type": "intrusion", "id": "street", "cooldown_s": 0,
                   "polygon": [[0, 0], [384, 0], [384, 288], [0, 288]]}],
    }
    path = tmp_path / "cam.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "firmware-bridges")])}
    # no -v: what an operator sees by default
    done = subprocess.run([sys.executable, "-m", "edge.cli", "edge", "camera", "--config",
                           str(path)], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    err = done.stderr
    assert done.returncode == 0, err
    outbox = Outbox(tmp_path / "edge" / f"{device}-outbox.sqlite")
    try:
        left = outbox.depth()
    finally:
        outbox.close()
    assert left >= 1  # the person in the street raised an intrusion; nobody acknowledged it
    default, why = choose_default(models_dir())  # NanoDet where set-up built it, else HOG
    for line in (f"camera {device} (site {site}) starting: source file {clip} at 384x288, "
                 "zones ['street']",
                 f"detector: {default.type} ({why})",
                 f"stream connected: file {clip}",
                 f"file {clip}: end of file after 20 frames",
                 f"source ended: waiting up to 1 s for {left} pending alert(s)",
                 f"{left} alert(s) left in the outbox {outbox.path}: the broker or the hub did "
                 "not acknowledge them within 1 s; they are sent at the next start",
                 f"camera {device} stopped; {left} alert(s) pending in the outbox"):
        assert line in err, err
    assert "broker connected" not in err


def test_broker_lost_and_back_is_logged_with_the_alerts_pending(
        own_broker: BrokerHarness, site: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LIFECYCLE)
    device = f"{site}-cam"
    config = CameraConfig(
        site=site, device=device, mqtt=own_broker.add_device(site, DeviceKind.CAMERA, device),
        data_dir=tmp_path, source=TestPatternSource(fps=10),
        ingest=IngestConfig(width_px=160, height_px=120))
    service = CameraService(config)

    def said(prefix: str) -> int:
        return sum(r.getMessage().startswith(prefix) for r in caplog.records
                   if r.name == LIFECYCLE)

    service.start()
    try:
        address = f"{config.mqtt.host}:{config.mqtt.port}"
        wait_until(lambda: said(f"broker connected: {address}; 0 alert(s) pending"), 20,
                   message="connected logged")
        own_broker.stop()
        wait_until(lambda: said(f"broker lost: {address}; 0 alert(s) pending, kept in the "
                                "outbox until the hub acknowledges them"), 20,
                   message="lost logged")
        own_broker.start()
        wait_until(lambda: said("broker connected: ") == 2, 30, message="reconnect logged")
    finally:
        service.stop()
    assert said("stream connected: test pattern ball") == 1


def test_validate_config_checks_that_a_file_source_is_there_and_readable(
        tmp_path: Path, vtest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def validate(source: dict[str, str]) -> tuple[int, str, str]:
        path = tmp_path / "cam.yaml"
        path.write_text(yaml.safe_dump({"site": "s", "device": "cam", "source": source}),
                        encoding="utf-8")
        rc = main(["edge", "camera", "--config", str(path), "--validate-config"])
        out, err = capsys.readouterr()
        return rc, out, err

    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    for target, problem in ((tmp_path / "nope.avi", "does not exist"),
                            (tmp_path, "is not a regular file"), (empty, "is empty")):
        rc, _, err = validate({"type": "file", "path": str(target)})
        assert rc == 2
        assert err.strip() == f"gridward: {tmp_path / 'cam.yaml'}: source.path: {target} {problem}"
    rc, out, _ = validate({"type": "file", "path": str(vtest)})
    assert rc == 0 and f"filesrc location=\"{vtest}\"" in out
    rc, out, _ = validate({"type": "rtsp", "url": "rtsp://op:Secr3t@10.0.0.9:554/ch1"})
    assert rc == 0 and "rtsp://10.0.0.9:554/ch1" in out
    assert "Secr3t" not in out and "op:" not in out
