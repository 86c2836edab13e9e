"""The glasses' ``camera:`` section: off unless the site says so, and refused with the reason
when it makes no sense; and the HUD keeps rendering while the face worker is stuck."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.config import ConfigError, parse_config
from edge.faces.keys import ed25519_public_b64, load_or_create_device_key
from edge.faces.types import BgrImage, FaceBackend, FaceBox
from edge.glasses.config import GlassesConfig
from edge.glasses.service import GlassesAgent
from edge.protocol import DeviceKind
from edge.validators import utcnow
from edge.vision.ingest import pipeline_description
from tests.edge.faces.bundles import Keys, payload
from tests.edge.glasses.support import RecordingRenderer, RecordingSink, glasses_config
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

KEYS = Keys()
WATCHLIST = {"hub_keys": {KEYS.key_id: ed25519_public_b64(KEYS.signing.public_key())}}
BASE: dict[str, Any] = {
    "site": "s1", "device": "g1", "officer": {"username": "li-wei"},
    "display": {"sink": {"type": "png", "directory": "hud-frames"}},
    "inputs": {"http": {"enabled": False}}}


def _parse(camera: object) -> GlassesConfig:
    return parse_config(yaml.safe_dump({**BASE, "camera": camera}), GlassesConfig,
                        "glasses.yaml")


def test_the_camera_is_off_unless_the_site_turns_it_on() -> None:
    assert parse_config(yaml.safe_dump(BASE), GlassesConfig).camera is None
    off = _parse({"enabled": False})
    assert off.camera is not None and not off.camera.enabled
    on = _parse({"enabled": True, "faces": {"watchlist": WATCHLIST}})
    assert on.camera is not None and on.camera.faces is not None
    assert on.camera.faces.search_region == "frame"  # no person detector on the glasses
    assert on.camera.analyse_fps == 5
    assert on.camera.source.type == "v4l2"


@pytest.mark.parametrize(("camera", "reason"), [
    ({}, "camera.enabled"),  # a site states its decision, it is never implied
    ({"enabled": True}, "camera.enabled needs camera.faces"),
    ({"enabled": True, "faces": {"watchlist": WATCHLIST, "matcher": {"threshold": 0.1}}},
     "below the validated floor"),
    ({"enabled": True, "faces": {"watchlist": WATCHLIST, "search_region": "person_upper"}},
     "search_region"),
    ({"enabled": True, "faces": {"watchlist": WATCHLIST}, "analyse_fps": 0}, "analyse_fps"),
    ({"enabled": True, "faces": {"watchlist": WATCHLIST}, "analyse_fps": 120}, "analyse_fps"),
    ({"enabled": True, "faces": {"watchlist": {"hub_keys": {}}}}, "hub_keys"),
    ({"enabled": True, "faces": {"watchlist": WATCHLIST},
      "source": {"type": "file", "path": "a.avi", "loop": True}}, "loop"),
    ({"enabled": True, "faces": {"watchlist": WATCHLIST},
      "source": {"type": "pipeline", "pipeline": "v4l2src ! appsink"}}, "appsink"),
    ({"enabled": True, "faces": {"watchlist": WATCHLIST},
      "source": {"type": "pipeline", "pipeline": "v4l2src !"}}, "'!'"),
    ({"enabled": True, "faces": {"watchlist": WATCHLIST}, "zoom": 2}, "zoom"),
])
def test_nonsense_is_refused_with_the_reason(camera: dict[str, object], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason.replace(".", r"\.")):
        _parse(camera)


def test_a_pipeline_source_gets_the_agents_conversion_and_sink() -> None:
    config = _parse({"enabled": True, "faces": {"watchlist": WATCHLIST},
                     "source": {"type": "pipeline",
                                "pipeline": "libcamerasrc ! video/x-raw,width=1280"}})
    assert config.camera is not None
    text = pipeline_description(config.camera.source, config.camera.ingest)
    assert text.startswith("libcamerasrc ! video/x-raw,width=1280 ! queue")
    assert text.endswith("emit-signals=false") and "appsink name=sink" in text


class _StuckDetector:
    """A face detector that blocks until released (a face model far too slow for the box)."""

    name = "stuck"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def detect(self, image: BgrImage) -> list[FaceBox]:
        self.entered.set()
        self.release.wait(30)
        return []


@pytest.mark.gstreamer
def test_the_hud_keeps_rendering_while_face_work_is_stuck(broker: BrokerHarness,
                                                          tmp_path: Path) -> None:
    site, device = "s-hud", "g-hud"
    key_file = tmp_path / "edge" / "bundle.key"
    keys = Keys(device=load_or_create_device_key(key_file))
    config = glasses_config(
        site, device, broker.add_device(site, DeviceKind.GLASSES, device), tmp_path / "edge",
        display={"sink": {"type": "png", "directory": str(tmp_path / "hud")},
                 "render_interval_s": 0.05},
        camera={"enabled": True,
                "source": {"type": "test", "fps": 30},
                "ingest": {"width_px": 160, "height_px": 120},
                "faces": {"watchlist": {**WATCHLIST, "hub_keys": {keys.key_id: ed25519_public_b64(
                    keys.signing.public_key())}, "key_file": str(key_file)}}})
    sink = RecordingSink()
    agent = GlassesAgent(config, renderer=RecordingRenderer(), sink=sink)
    camera = agent.camera
    assert camera is not None
    bundle = keys.seal(payload(issued_at=utcnow(), model=camera.backend.embedder.name),
                       site=site, device=device)
    assert camera.watchlist.handle(bundle).ok
    stuck = _StuckDetector()
    b = camera.stage.backend
    camera.stage.backend = FaceBackend(b.name, stuck, b.embedder, b.default_threshold, b.floor,
                                       b.licence)
    agent.start()
    try:
        assert stuck.entered.wait(30), "the face worker never ran"
        frames = sink.frames
        # the HUD goes on while the face worker is stuck, and the camera's frames that the
        # worker cannot take are dropped and counted, never queued without bound
        wait_until(lambda: sink.frames >= frames + 5, timeout_s=20)
        wait_until(lambda: camera.source.dropped["frame_not_taken"] > 0, timeout_s=20)
        health = agent.runtime.health_message()
        assert health.dropped["camera_frame_not_taken"] > 0
    finally:
        stuck.release.set()
        agent.stop()


def test_the_examples_commented_camera_validates_once_uncommented() -> None:
    example = Path(__file__).resolve().parents[3] / "configs" / "glasses.yaml"
    text = example.read_text(encoding="utf-8")
    start = text.index("# camera:")
    block = "\n".join(line.removeprefix("# ") for line in text[start:].splitlines())
    key_id, key = next(iter(WATCHLIST["hub_keys"].items()))
    block = block.replace("hubkey-1", key_id).replace(
        "<base64 Ed25519 public key: gridward hub watchlist-key>", key)
    config = parse_config(text[:start] + block + "\n", GlassesConfig, "glasses.yaml")
    assert config.camera is not None and config.camera.enabled
    assert parse_config(text, GlassesConfig, "glasses.yaml").camera is None  # as shipped: off


def test_validate_config_loads_the_face_models_and_names_a_missing_recording(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main

    def write(camera: object) -> str:
        path = tmp_path / "glasses.yaml"
        path.write_text(yaml.safe_dump({**BASE, "camera": camera}), encoding="utf-8")
        return str(path)

    on = {"enabled": True, "faces": {"watchlist": WATCHLIST}}
    assert main(["edge", "glasses", "--config", write(on), "--validate-config"]) == 0
    assert "camera: yunet-sface, threshold 0.4 (floor 0.37)" in capsys.readouterr().out
    assert main(["edge", "glasses", "--config", write({"enabled": False}),
                 "--validate-config"]) == 0
    assert "camera: off" in capsys.readouterr().out
    missing = {**on, "source": {"type": "file", "path": str(tmp_path / "nope.avi")}}
    assert main(["edge", "glasses", "--config", write(missing), "--validate-config"]) == 2
    assert "camera.source.path" in capsys.readouterr().err


def test_the_glasses_config_and_agent_load_without_opencv() -> None:
    """OpenCV and the face models come with the faces extra: a glasses box without them (its
    camera off) still loads its config and starts its agent."""
    import subprocess
    import sys

    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, *args):\n"
            "        if name == 'cv2' or name.startswith('cv2.'):\n"
            "            raise ImportError('cv2 blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import edge.glasses.config, edge.glasses.service, edge.glasses.cli\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
