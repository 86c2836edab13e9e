"""One real glasses agent run with its camera on, recorded for the glasses face tests
(tests/edge/glasses/test_camera_faces.py): the camera agent's face video (obama2, biden, obama3;
tests/edge/faces/face_video.py) played through the glasses camera's real
GStreamer file ingest, YuNet + SFace in whole frames, the face tracker, the watchlist receiver
and the durable outbox, over the real Mosquitto; the bundle (``entry-obama``, from obama.jpg,
a photo the video does not show) sealed to the glasses' own bundle key and pushed retained.

Recorded as in tests/edge/faces/video_run.py (the camera's run, whose recorder and helpers are
reused): every MQTT message the hub account can read, every log record at DEBUG, every file
under the run's directory and new files of the temp dir, and, in the test's memory, every face
the agent embedded (box, embedding, the crop its own encoder makes). Once per session: ~5 s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edge.agent import AgentRuntime
from edge.faces.backends import FaceBackendConfig, load_backend
from edge.faces.types import FaceBackend
from edge.faces.watchlist import EdgeWatchlist
from edge.glasses.service import GlassesAgent, PhoneFixes
from edge.glasses.view import Pose
from edge.protocol import DeviceKind
from edge.validators import utcnow
from edge.vision.ingest import Frame
from tests.edge.faces.face_video import build_face_video
from tests.edge.faces.video_run import FaceRun, RunRecording, TraceRecorder, seal_obama
from tests.edge.glasses.support import RecordingRenderer, RecordingSink, glasses_config
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

# the camera's video without its group photo: six faces a frame cost the most model time and
# add no case the glasses' tests need (Biden is the face that is not enrolled)
PHOTOS = ("obama2", "biden", "obama3")
_RUN: dict[str, tuple[FaceRun, RecordingRenderer]] = {}
OFFICER_FIX = (114.0571, 22.5431, 4.0)  # lon, lat, accuracy in metres


def glasses_face_run(broker: BrokerHarness, site_factory: Callable[[], str], root: Path
                     ) -> tuple[FaceRun, RecordingRenderer]:
    """The recorded run and the HUD renderer that saw every view (made once, then shared)."""
    if "run" not in _RUN:
        _RUN["run"] = _make_run(broker, site_factory(), root)
    return _RUN["run"]


def _make_run(broker: BrokerHarness, site: str, root: Path
              ) -> tuple[FaceRun, RecordingRenderer]:
    device = f"{site}-glasses"
    run_dir = root / "glasses-face-run"
    data_dir = run_dir / "edge"
    video = run_dir / "faces.avi"
    run_dir.mkdir(parents=True)
    segments = build_face_video(video, PHOTOS, frames_each=5, gap_frames=3)
    backend = load_backend(FaceBackendConfig())
    key_file = data_dir / "watchlist" / "device.key"
    envelope_bytes, hub_keys = seal_obama(backend, site, device, key_file)
    config = glasses_config(
        site, device, broker.add_device(site, DeviceKind.GLASSES, device), data_dir,
        camera={
            "enabled": True,
            "source": {"type": "file", "path": str(video)},
            "ingest": {"width_px": 640, "height_px": 480, "policy": "all"},
            "analyse_fps": 10,  # the video's own rate: every frame is looked at
            "faces": {
                "matcher": {"k_frames": 2, "n_frames": 4, "cooldown_s": 0},
                "watchlist": {"hub_keys": hub_keys, "key_file": str(key_file),
                              "store_dir": str(data_dir / "watchlist")},
            },
        })
    assert config.camera is not None and config.camera.faces is not None

    recording = RunRecording(broker, site)
    renderer = RecordingRenderer()
    agent: GlassesAgent | None = None
    traces = TraceRecorder(backend, config.camera.faces.crop)
    try:
        # the hub pushed the bundle (retained, QoS 1) before the video starts: a first short
        # life of the glasses' runtime and watchlist receives and stores it, so the glasses
        # play the video with it in force
        recording.push_bundle(device, envelope_bytes)
        runtime = AgentRuntime(config, DeviceKind.GLASSES)
        watchlist = EdgeWatchlist(config.camera.faces.watchlist, runtime,
                                  backend.embedder.name)
        runtime.start()
        try:
            wait_until(lambda: watchlist.gallery().version == 1, timeout_s=15)
        finally:
            runtime.stop()
        agent = GlassesAgent(config, renderer=renderer, sink=RecordingSink())
        # the officer stands at OFFICER_FIX (a phone fix): a match is placed there
        fixes = PhoneFixes(max_fix_age_s=3600.0)
        fixes.update(Pose(lon=OFFICER_FIX[0], lat=OFFICER_FIX[1], fix_at=utcnow(),
                          accuracy_m=OFFICER_FIX[2]))
        agent.position = fixes
        camera = agent.camera
        assert camera is not None
        assert camera.watchlist.gallery().version == 1
        b = camera.stage.backend
        camera.stage.backend = FaceBackend(b.name, b.detector, traces, b.default_threshold,
                                           b.floor, b.licence)
        handle = camera.handle

        def numbered(frame: Frame) -> object:
            traces.frame = frame.seq - 1  # the frame's index in the video, from 0
            return handle(frame)

        setattr(camera, "handle", numbered)  # noqa: B010 - an instance hook, test only
        agent.start()
        wait_until(camera.finished.is_set, timeout_s=60)
        wait_until(lambda: recording.alerts_recorded() >= camera.alerts_sent, timeout_s=10)
        metrics = dict(agent.runtime.health_message().metrics)
        frames = int(camera.source.counters["frames"])
        agent.tick()  # one more HUD frame with every match raised
    finally:
        if agent is not None:
            agent.stop()
        recording.close(device)
    run = recording.finish(device=device, segments=segments, run_dir=run_dir, root=root,
                           video=video, data_dir=data_dir, traces=traces,
                           health_metrics=metrics, frames_processed=frames)
    return run, renderer
